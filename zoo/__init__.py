"""mat-keras model zoo: the reference implementation's networks, their data and their weights.

Installed as `mat_keras.zoo` (the folder `zoo/` at the top of the repository).
"""

from mat_keras.zoo.datasets import load_dataset
from mat_keras.zoo.models import *  # noqa: F401,F403
from mat_keras.zoo.models import __all__ as _model_names

__all__ = ["load_dataset", *_model_names]
