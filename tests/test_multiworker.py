"""Data-parallel MAT across two processes on this machine, loopback only.

- TensorFlow: `tf.distribute.MultiWorkerMirroredStrategy`, two worker
  processes whose `TF_CONFIG` names two free 127.0.0.1 ports;
- JAX: `keras.distribution.DataParallel` over the devices of two processes
  joined by `keras.distribution.initialize` (`jax.distributed.initialize`)
  with a coordinator on 127.0.0.1, CPU collectives through gloo.

Each test starts the workers as subprocesses of this file
(`python tests/test_multiworker.py tf|jax INDEX PORT... OUT_DIR`), bounded
by `TIMEOUT` seconds, plus one single-process reference run. What they
show:

- every worker adds the same noise within a step (the wrapper's seed state
  is a replicated variable), and the noise is redrawn between steps;
- after 1 clean + 2 noisy epochs (`TwoPhaseSchedule`, `WeightClip`) every
  worker holds the weights of one process trained on the same global
  batches, to float tolerance, while another noise seed moves them far
  more.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

# The model and data of the one-process, two-device tests (tests/ is on the
# path both under pytest and when this file runs as a worker script).
from test_distributed import GLOBAL_BATCH, _data, _model, jax_noisy_steps

HERE = pathlib.Path(__file__).resolve()
WORKERS = 2
EPOCHS = 3
TIMEOUT = 240
# Two workers sum their gradients in another order than one process does.
WEIGHT_TOLERANCE = 1e-5
SEED_EFFECT = 1e-3


# ------------------------------------------------------------------ tests


def test_multi_worker_mirrored_strategy_two_processes_train_like_one(tmp_path):
    _require("tensorflow")
    _check(_run_workers("tf", tmp_path), tmp_path, "tf")


def test_jax_two_processes_train_like_one(tmp_path):
    _require("jax")
    _check(_run_workers("jax", tmp_path), tmp_path, "jax")


def _require(backend):
    from mat_testing import require_backends

    require_backends(backend)


def _check(results, folder, mode):
    assert [r["replicas"] for r in results] == [WORKERS] * WORKERS, results
    workers = [np.load(folder / f"{mode}-{i}.npz") for i in range(WORKERS)]
    reference = np.load(folder / f"{mode}-single.npz")
    # The same noisy outputs on every worker within a step, others next step.
    for step in ("first", "second"):
        np.testing.assert_array_equal(workers[0][step], workers[1][step])
    assert not np.allclose(workers[0]["first"], workers[0]["second"], atol=1e-3)
    assert not np.allclose(workers[0]["first"], workers[0]["clean"], atol=1e-3)
    names = sorted(k for k in reference.files if k.startswith("w"))
    for worker in workers:
        difference = max(float(np.abs(worker[n] - reference[n]).max()) for n in names)
        assert difference <= WEIGHT_TOLERANCE, difference
    seed_effect = max(float(np.abs(reference[n] - reference["other_" + n]).max()) for n in names)
    assert seed_effect >= SEED_EFFECT


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_workers(mode, folder):
    """Runs the workers and the reference; returns the workers' results."""
    backend = {"tf": "tensorflow", "jax": "jax"}[mode]
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               no_proxy="127.0.0.1", NO_PROXY="127.0.0.1")
    env.pop("TF_CONFIG", None)
    ports = [str(p) for p in _free_ports(WORKERS)]
    commands = [[sys.executable, str(HERE), mode, str(i), *ports, str(folder)] for i in range(WORKERS)]
    commands.append([sys.executable, str(HERE), mode, "single", *ports, str(folder)])
    processes = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for c in commands]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=TIMEOUT)[0])
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        tails = [(p.communicate()[0] or "")[-3000:] for p in processes]
        pytest.fail(f"{mode} workers ran past {TIMEOUT} s:\n" + "\n---\n".join(tails))
    results = []
    for process, output in zip(processes, outputs):
        lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
        if process.returncode or not lines:
            pytest.fail(f"{mode} worker {process.args[3]} exited {process.returncode}:\n{output[-6000:]}")
        results.append(json.loads(lines[-1][len("RESULT "):]))
    return results[:WORKERS]


# ------------------------------------------------------------ the workers


def _local_half(array, index):
    """Rows of worker `index`: its half of every global batch, in order."""
    batches = array.reshape(-1, GLOBAL_BATCH, *array.shape[1:])
    half = GLOBAL_BATCH // WORKERS
    return batches[:, index * half : (index + 1) * half].reshape(-1, *array.shape[1:])


def _callbacks():
    import mat_keras as mat

    return [mat.TwoPhaseSchedule(clean_epochs=1), mat.WeightClip(1.5)]


def _save(folder, name, noise, weights, other=None):
    arrays = {**noise, **{f"w{i:02d}": w for i, w in enumerate(weights)}}
    if other is not None:
        arrays.update({f"other_w{i:02d}": w for i, w in enumerate(other)})
    np.savez(pathlib.Path(folder) / f"{name}.npz", **arrays)


def _single(mode, folder):
    """One process, no distribution: the reference weights for both seeds."""
    import keras

    x, y = _data()
    runs = []
    for seed in (5, 6):
        model = _model(seed)
        model.fit(x, y, batch_size=GLOBAL_BATCH, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=_callbacks())
        runs.append([np.asarray(keras.ops.convert_to_numpy(v)) for v in model.trainable_weights])
    _save(folder, f"{mode}-single", {}, runs[0], runs[1])


def tf_worker(index, ports, folder):
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
        "task": {"type": "worker", "index": index},
    })
    import tensorflow as tf

    import keras

    import mat_keras as mat

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    rows = tf.constant(_data()[0][:4])
    with strategy.scope():
        layer = mat.NoisyWeights(keras.layers.Dense(8), noise=0.2, seed=1)
        layer.build((None, 10))

    @tf.function
    def step():
        return strategy.run(lambda: layer(rows, training=True))

    noise = {"first": strategy.experimental_local_results(step())[0].numpy()}
    noise["second"] = strategy.experimental_local_results(step())[0].numpy()
    noise["clean"] = layer(rows).numpy()

    with strategy.scope():
        model = _model(5)
    x, y = _data()
    # The global batch is the dataset's batch; DATA sharding gives each worker
    # its half of every batch.
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    fit_multi_worker(model, strategy, dataset.with_options(options), EPOCHS, _callbacks())
    _save(folder, f"tf-{index}", noise, [v.numpy() for v in model.trainable_weights])
    return {"replicas": strategy.num_replicas_in_sync}


def fit_multi_worker(model, strategy, dataset, epochs, callbacks):
    """`model.fit` for MultiWorkerMirroredStrategy: the model's own train step, our loop.

    Keras 3.15's `fit` cannot run under this strategy: it reduces the
    step's scalar logs with `strategy.reduce("MEAN", value, axis=0)`, which
    fails ("Invalid reduction dimension 0 for input with 0 dimensions").
    This loop runs `model.train_step` (forward with noise, loss scaled for
    the replicas, all-reduced gradients, optimizer) with `strategy.run` and
    calls the callbacks as `fit` does, batch by batch.
    """
    import tensorflow as tf

    import keras

    callbacks = keras.callbacks.CallbackList(callbacks, model=model)

    @tf.function
    def step(batch):
        strategy.run(model.train_step, args=(batch,))

    batches = strategy.experimental_distribute_dataset(dataset)
    callbacks.on_train_begin()
    for epoch in range(epochs):
        callbacks.on_epoch_begin(epoch)
        for index, batch in enumerate(batches):
            callbacks.on_train_batch_begin(index)
            step(batch)
            callbacks.on_train_batch_end(index)
        callbacks.on_epoch_end(epoch)
    callbacks.on_train_end()


def jax_worker(index, ports, folder):
    import jax

    # CPU collectives between processes; without them every cross-process
    # computation fails.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras

    keras.distribution.initialize(f"127.0.0.1:{ports[0]}", num_processes=WORKERS, process_id=index)
    from jax.sharding import NamedSharding, PartitionSpec

    import mat_keras as mat

    distribution = keras.distribution.DataParallel(devices=jax.devices())
    # Each process feeds its own half of every global batch (`_local_half`).
    distribution.auto_shard_dataset = False
    keras.distribution.set_distribution(distribution)
    layer = mat.NoisyWeights(keras.layers.Dense(8), noise=0.2, seed=1)
    layer.build((None, 10))
    mesh = distribution.device_mesh.backend_mesh
    batch = NamedSharding(mesh, PartitionSpec("batch"))
    rows = _data()[0][:4]
    x = jax.make_array_from_process_local_data(batch, rows)

    first, second = jax_noisy_steps(layer, x, batch, steps=2)
    noise = {name: np.asarray(out.addressable_shards[0].data) for name, out in (("first", first), ("second", second))}
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]
    clean, _ = jax.jit(lambda t, n, x: layer.stateless_call(t, n, x))(trainable, non_trainable, x)
    noise["clean"] = np.asarray(clean.addressable_shards[0].data)

    model = _model(5)
    x, y = _data()
    # Keras's JAX trainer takes each process's local rows as its shard of
    # the global batch: half of every global batch here.
    model.fit(_local_half(x, index), _local_half(y, index), batch_size=GLOBAL_BATCH // WORKERS,
              epochs=EPOCHS, shuffle=False, verbose=0, callbacks=_callbacks())
    weights = [np.asarray(v.value.addressable_shards[0].data) for v in model.trainable_weights]
    _save(folder, f"jax-{index}", noise, weights)
    return {"replicas": len(jax.devices())}


if __name__ == "__main__":
    mode, index, *ports, out = sys.argv[1:]
    if index == "single":
        _single(mode, out)
        result = {"replicas": 1}
    else:
        result = {"tf": tf_worker, "jax": jax_worker}[mode](int(index), [int(p) for p in ports], out)
    print("RESULT " + json.dumps(result), flush=True)
