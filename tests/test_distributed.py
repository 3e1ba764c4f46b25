"""Data-parallel MAT with the backends' own engines, on two virtual CPU devices.

- TensorFlow: `tf.distribute.MirroredStrategy` over two logical CPU devices
  (`tf.config.set_logical_device_configuration`);
- JAX: `keras.distribution.DataParallel` over two host devices
  (`XLA_FLAGS=--xla_force_host_platform_device_count=2`).

Both must be set up before the framework starts, so each runs this file as a
script in a subprocess of its own (`python tests/test_distributed.py`). What
they show:

- within a step every replica computes with the same noisy weights: the
  wrapper's `SeedGenerator` state is a replicated (mirrored) variable, so
  each replica draws from the same state;
- two-replica training with the noise on (`TwoPhaseSchedule`, `WeightClip`)
  gives the weights of one-replica training on the same global batches, to
  float tolerance, while another noise seed moves them far more;
- `robustness_sweep` runs under the distribution (each evaluation split over
  the devices) and gives the single-device result.
"""

import os
import pathlib

import numpy as np

from mat_testing import print_result, require_backends, run_on_backend

HERE = pathlib.Path(__file__).resolve()
DEVICES = 2
# Two replicas sum their gradients in another order than one replica does:
# float32 rounding, amplified a little by Adam over the steps.
WEIGHT_TOLERANCE = 1e-5
# Another noise seed must move the weights by far more than the tolerance.
SEED_EFFECT = 1e-3
GLOBAL_BATCH = 16


# ------------------------------------------------------------------ tests


def _check(result):
    assert result["replicas"] == DEVICES
    assert result["replica_outputs_equal"], "the replicas drew different weight noise in one step"
    assert result["noise_active"] and result["noise_redrawn"]
    assert result["max_weight_difference"] <= WEIGHT_TOLERANCE, result
    assert result["seed_effect"] >= SEED_EFFECT, result
    assert result["gate_after_training"] == 1.0 and result["clipped"], result
    assert result["sweep_accuracy_equal"], result
    assert result["sweep_loss_difference"] <= 1e-5, result


def test_mirrored_strategy_two_replicas_train_like_one():
    require_backends("tensorflow")
    _check(run_on_backend(HERE, "tensorflow"))


def test_jax_data_parallel_two_devices_train_like_one():
    require_backends("jax")
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={DEVICES}"
    _check(run_on_backend(HERE, "jax", env={"XLA_FLAGS": flags.strip()}))


# ------------------------------------------------------------ the worker


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 10)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5)
    return x, y


def _model(noise_seed):
    import keras

    import mat_keras as mat

    keras.utils.set_random_seed(0)  # the same initial weights every time
    model = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)]
    )
    robust = mat.wrap(model, noise=0.2, seed=noise_seed)
    robust.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return robust


def _train(noise_seed, scope=None):
    """Builds a wrapped MLP (in `scope`), trains it 1 clean and 2 noisy epochs, sweeps it.

    As the README tells users: the model is built and compiled in the
    strategy's scope; `fit` and the sweep run outside it.
    """
    import contextlib

    import mat_keras as mat

    x, y = _data()
    with scope() if scope else contextlib.nullcontext():
        model = _model(noise_seed)
    model.fit(
        x, y, batch_size=GLOBAL_BATCH, epochs=3, shuffle=False, verbose=0,
        callbacks=[mat.TwoPhaseSchedule(clean_epochs=1), mat.WeightClip(1.5)],
    )
    sweep = mat.robustness_sweep(model, x, y, sds=[0.0, 0.2], draws=3, seed=0, batch_size=GLOBAL_BATCH, verbose=0)
    return model, sweep


def _compare(single, distributed, other_seed):
    import keras

    import mat_keras as mat

    (one, one_sweep), (two, two_sweep), (other, _) = single, distributed, other_seed
    difference = max(float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), two.get_weights()))
    seed_effect = max(float(np.abs(a - b).max()) for a, b in zip(two.get_weights(), other.get_weights()))
    kernel = keras.ops.convert_to_numpy(mat.noisy_layers(two)[0].layer.kernel)
    return {
        "max_weight_difference": difference,
        "seed_effect": seed_effect,
        "gate_after_training": float(keras.ops.convert_to_numpy(mat.noisy_layers(two)[0].gate)),
        # Clipped after the last step: several entries pile up at the bound.
        "clipped": int((np.abs(kernel) == np.abs(kernel).max()).sum()) >= 3,
        "sweep_accuracy_equal": bool(np.array_equal(one_sweep.accuracy, two_sweep.accuracy)),
        "sweep_loss_difference": float(np.abs(one_sweep.loss - two_sweep.loss).max()),
    }


def tensorflow_worker():
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * DEVICES)
    import keras

    import mat_keras as mat

    strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(DEVICES)])
    result = {"replicas": strategy.num_replicas_in_sync}

    # One step on every replica with the same inputs: the same noisy output.
    with strategy.scope():
        layer = mat.NoisyWeights(keras.layers.Dense(8), noise=0.2, seed=1)
        layer.build((None, 10))
    x = tf.constant(_data()[0][:4])

    @tf.function
    def step():
        return strategy.run(lambda: layer(x, training=True))

    first = [t.numpy() for t in strategy.experimental_local_results(step())]
    second = [t.numpy() for t in strategy.experimental_local_results(step())]
    clean = layer(x).numpy()
    result["replica_outputs_equal"] = all(np.array_equal(first[0], out) for out in first[1:]) and all(
        np.array_equal(second[0], out) for out in second[1:]
    )
    result["noise_active"] = not np.allclose(first[0], clean, atol=1e-3)
    result["noise_redrawn"] = not np.allclose(first[0], second[0], atol=1e-3)

    single = _train(5)
    result.update(_compare(single, _train(5, strategy.scope), _train(6, strategy.scope)))
    print_result(result)


def jax_noisy_steps(layer, x, sharding, steps):
    """The outputs of `steps` compiled training calls of `layer` on `x` (JAX), sharded by `sharding`."""
    import jax

    @jax.jit
    def step(trainable, non_trainable, x):
        outputs, non_trainable = layer.stateless_call(trainable, non_trainable, x, training=True)
        return jax.lax.with_sharding_constraint(outputs, sharding), non_trainable

    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]
    outputs = []
    for _ in range(steps):
        out, non_trainable = step(trainable, non_trainable, x)
        outputs.append(out)
    return outputs


def jax_worker():
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    import keras

    import mat_keras as mat

    devices = jax.devices()
    distribution = keras.distribution.DataParallel(devices=devices)
    result = {"replicas": len(devices)}

    # One step, the batch split over the devices, the same rows on each: the
    # same noisy output on every device.
    with distribution.scope():
        layer = mat.NoisyWeights(keras.layers.Dense(8), noise=0.2, seed=1)
        layer.build((None, 10))
    mesh = distribution.device_mesh.backend_mesh
    batch = NamedSharding(mesh, PartitionSpec("batch"))
    rows = _data()[0][:4]
    x = jax.device_put(np.concatenate([rows] * len(devices)), batch)

    outputs = []
    for out in jax_noisy_steps(layer, x, batch, steps=2):
        shards = sorted(out.addressable_shards, key=lambda shard: shard.index[0].start or 0)
        assert len({shard.device for shard in shards}) == len(devices)
        outputs.append([np.asarray(shard.data) for shard in shards])
    clean = keras.ops.convert_to_numpy(layer(rows))
    result["replica_outputs_equal"] = all(
        np.array_equal(per_device[0], other) for per_device in outputs for other in per_device[1:]
    )
    result["noise_active"] = not np.allclose(outputs[0][0], clean, atol=1e-3)
    result["noise_redrawn"] = not np.allclose(outputs[0][0], outputs[1][0], atol=1e-3)

    single = _train(5)
    # As the README tells users: the distribution set for the whole program.
    keras.distribution.set_distribution(distribution)
    distributed = _train(5)
    result.update(_compare(single, distributed, _train(6)))
    kernel = mat.noisy_layers(distributed[0])[0].layer.kernel
    # Replicated over the devices, not sitting on one of them.
    result["replicas"] = min(result["replicas"], len(kernel.value.sharding.device_set))
    print_result(result)


if __name__ == "__main__":
    import keras

    {"tensorflow": tensorflow_worker, "jax": jax_worker}[keras.backend.backend()]()
