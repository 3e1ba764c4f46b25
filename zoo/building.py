"""Builds registry weights from scratch: train a task's recipe, sweep, record.

One build runs a task's two-phase recipe (`zoo.tasks`) with a fixed seed and
yields two weight files: the model at the end of the clean phase
("vanilla") and at the end of the memristor-aware phase ("mat"). Each file
is loaded back into a fresh model and swept on the dataset's test split, and
its registry entry records the recipe, the file's sha256 and size, and that
sweep. `mat-keras zoo build` is the command-line face of `build_weights`.
"""

import importlib.metadata
import os
import platform

import keras
import numpy as np

import mat_keras as mat
from mat_keras.errors import InvalidArgumentError
from mat_keras.zoo import tasks as tasks_lib
from mat_keras.zoo import weights as weights_lib
from mat_keras.zoo.registry import VARIANTS, Registry, WeightsEntry

# The zoo's fixed train/test split of a dataset (the default of `load_dataset`);
# the build seed only drives initialisation, data order and training noise.
SPLIT_SEED = 0
SWEEP_DRAWS = 10
SWEEP_SEED = 0
SWEEP_BATCH = 256


def entry_name(task, variant):
    """Registry name of a task's weights, e.g. `"mnist_mlp-mat-mnist5k"`.

    Args:
        task: a `zoo.tasks.Task`.
        variant: `"vanilla"` or `"mat"`.
    """
    return f"{task.constructor_name()}-{variant}-{task.name.replace('-', '')}"


def build_task(name, registry=None):
    """Returns the recipe a build name refers to: a task name or an entry name.

    Args:
        name: a task (`"mnist-5k"`, built with its default model) or a
            registry entry name (`"mnist_mlp-mat-mnist5k"`,
            `"fashion_cnn-mat-fashionmnist"`, built or not yet), which also
            picks the model of tasks that have several.
        registry: a `Registry` whose entries may name their task.

    Returns:
        A `zoo.tasks.Task`, specialised to the model built (`Task.for_model`).

    Raises:
        InvalidArgumentError: neither; the message lists the buildable names.
    """
    if name in tasks_lib.TASKS:
        return tasks_lib.TASKS[name].for_model()
    if registry is not None and name in registry.entries:
        recipe = registry.entries[name].recipe
        if recipe.get("task") in tasks_lib.TASKS:
            return tasks_lib.TASKS[recipe["task"]].for_model(recipe.get("model"))
    for task in _buildable_recipes():
        if name in (entry_name(task, variant) for variant in VARIANTS):
            return task
    buildable = sorted(tasks_lib.TASKS)
    raise InvalidArgumentError(
        f"Nothing to build called {name!r}; build a task ({', '.join(buildable)}) or one of its entries "
        f"({', '.join(entry_name(task, 'mat') for task in _buildable_recipes())}, and their -vanilla- twins)."
    )


def _buildable_recipes():
    """Every task with each model that has a recipe of its own, default model first."""
    for name in sorted(tasks_lib.TASKS):
        task = tasks_lib.TASKS[name]
        yield task.for_model()
        for model in task.model_recipes:
            if model != task.model:
                yield task.for_model(model)


def build_weights(
    name,
    out_dir,
    registry_path=None,
    epochs=None,
    clean_epochs=None,
    seed=0,
    draws=SWEEP_DRAWS,
    data_dir=None,
    verbose=2,
):
    """Trains a task's recipe from scratch and writes its weights and entries.

    Writes `<out_dir>/<entry name>.weights.h5` for the vanilla and the MAT
    model, then adds (or replaces) their entries in the registry file, each
    write atomic; the weight files land first, so the registry never names a
    file that is not there.

    Args:
        name: a task or entry name (see `build_task`).
        out_dir: folder for the weight files.
        registry_path: registry file to update; None means
            `<out_dir>/registry.json`. The files are shipped with it when
            they sit in its folder.
        epochs: total epochs; None keeps the recipe's.
        clean_epochs: clean-phase epochs; None keeps the recipe's, or keeps
            its share of `epochs` when only `epochs` is given.
        seed: seed of initialisation, data order and training noise.
        draws: noise draws per level of the recorded sweep.
        data_dir: folder with the dataset files (for tasks that need them).
        verbose: Keras `fit` verbosity.

    Returns:
        The new `WeightsEntry`s, vanilla first.

    Example:

    >>> entries = build_weights("mnist-5k", out_dir="zoo/weights",
    ...                         registry_path="zoo/weights/registry.json")
    >>> entries[1].accuracy_at(0.2)
    0.8947
    """
    from mat_keras.zoo import load_dataset
    from mat_keras.zoo.training import train_two_phase

    registry_path = registry_path or os.path.join(out_dir, "registry.json")
    registry = Registry.load(registry_path, missing_ok=True)
    task = build_task(name, registry)
    epochs, clean_epochs = _phase_lengths(task, epochs, clean_epochs)
    data_options = {} if data_dir is None else {"data_dir": data_dir}
    data = load_dataset(task.dataset, seed=SPLIT_SEED, **data_options)
    run = train_two_phase(
        task, data, model_name=task.model, epochs=epochs, clean_epochs=clean_epochs, seed=seed, verbose=verbose
    )
    model_kwargs = {"num_classes": int(data.num_classes), "input_shape": list(data.input_shape)}
    recipe = _recipe(task, epochs, clean_epochs, seed)
    entries = []
    for variant, model in (("vanilla", run.vanilla), ("mat", run.robust)):
        entry_id = entry_name(task, variant)
        path = os.path.join(out_dir, entry_id + weights_lib.SUFFIX)
        digest, size = weights_lib.write_weights_file(model, path, task.constructor_name())
        # Sweep what was written: the file loaded into a fresh model.
        fresh = weights_lib.load_weights_file(task.build_model(**_as_kwargs(model_kwargs)), path, task.constructor_name())
        result = mat.robustness_sweep(
            fresh,
            data.test_dataset(SWEEP_BATCH),
            sds=list(task.sweep_sds),
            draws=draws,
            seed=SWEEP_SEED,
            name=variant,
            data=data.description,
            verbose=0,
        )
        entries.append(
            WeightsEntry(
                name=entry_id,
                model=task.constructor_name(),
                model_kwargs=model_kwargs,
                variant=variant,
                dataset=task.dataset,
                training_noise=None if variant == "vanilla" else mat.noise.serialize(mat.noise.Gaussian(task.noise_sd)),
                device=None,
                recipe=recipe,
                file=os.path.basename(path),
                sha256=digest,
                size=size,
                sweep=_sweep_record(result),
                description=_description(task, variant, epochs, clean_epochs, seed),
                built_with=_versions(),
            )
        )
    registry.with_entries(entries).save()
    return entries


def _phase_lengths(task, epochs, clean_epochs):
    if epochs is not None and clean_epochs is None:
        clean_epochs = round(epochs * task.clean_epochs / task.epochs)
    epochs = task.epochs if epochs is None else epochs
    clean_epochs = task.clean_epochs if clean_epochs is None else clean_epochs
    if epochs < 1 or not 1 <= clean_epochs < epochs:
        raise InvalidArgumentError(
            f"A build needs at least one clean and one MAT epoch: got {clean_epochs} clean of {epochs} epochs."
        )
    return epochs, clean_epochs


def _recipe(task, epochs, clean_epochs, seed):
    recipe = {
        "task": task.name,
        "epochs": epochs,
        "clean_epochs": clean_epochs,
        "batch_size": task.batch_size,
        "optimizer": task.optimizer,
        "noise_sd": task.noise_sd,
        "clip_w": task.clip_w,
        "seed": seed,
        "split_seed": SPLIT_SEED,
    }
    if task.model_recipes:
        # Tasks of several recipes: which one this was, for rebuilds.
        recipe["model"] = task.model
    if task.lr_milestones:
        recipe["lr_milestones"] = list(task.lr_milestones)
        recipe["lr_decay"] = task.lr_decay
    return recipe


def _sweep_record(result):
    """The sweep as the registry keeps it: levels, draws, seed, mean and std."""
    return {
        "sds": [float(sd) for sd in result.sds],
        "draws": int(result.draws),
        "seed": result.seed,
        "data": result.data,
        "mean": [round(float(v), 6) for v in result.mean()],
        "std": [round(float(v), 6) for v in result.std()],
    }


def _description(task, variant, epochs, clean_epochs, seed):
    if variant == "vanilla":
        trained = f"after the {clean_epochs} clean epochs"
    else:
        clip = f", weights clipped to ±{task.clip_w:g} std" if task.clip_w else ""
        trained = (
            f"after {clean_epochs} clean + {epochs - clean_epochs} epochs with weight noise sd "
            f"{task.noise_sd:g} (of 2·max|w|){clip}"
        )
    return f"{task.constructor_name()} on {task.dataset}, {trained}, seed {seed}"


def _versions():
    versions = {
        "mat_keras": mat.__version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    # The backend's own framework: its package has the backend's name.
    versions[versions["backend"]] = importlib.metadata.version(versions["backend"])
    return versions


def _as_kwargs(model_kwargs):
    kwargs = dict(model_kwargs)
    if "input_shape" in kwargs:
        kwargs["input_shape"] = tuple(kwargs["input_shape"])
    return kwargs
