"""mat-keras: memristor-aware training for Keras 3.

Train a network clean, then on with noise added to its weights in the forward
pass (straight-through to the clean weights), and it keeps its accuracy when
the weights are programmed onto noisy memristor crossbars.

Example:

>>> import keras, mat_keras as mat
>>> robust = mat.wrap(model, noise=mat.noise.Gaussian(0.1), seed=0)
>>> robust.fit(x, y, epochs=30,
...            callbacks=[mat.TwoPhaseSchedule(clean_epochs=15), mat.WeightClip(2.5)])
>>> print(mat.robustness_sweep(robust, x_test, y_test, draws=10).table())
"""

# First, before Keras imports TensorFlow: quiets its C++ log for the `mat-keras` command.
from mat_keras import _cli_startup  # noqa: F401  isort: skip
from mat_keras import crossbar, devices, errors, layers, noise
from mat_keras.callbacks import NoiseFineTuning, TwoPhaseSchedule
from mat_keras.clipping import ClipByStd, WeightClip
from mat_keras.deployment import deployment_sweep
from mat_keras.results import DeploymentResult, SweepResult
from mat_keras.sweep import robustness_sweep
from mat_keras.wrapper import NoisyWeights
from mat_keras.wrapping import chip_model, noisy_layers, set_noise_gate, strip, wrap

__version__ = "0.1.0"

__all__ = [
    "chip_model",
    "ClipByStd",
    "DeploymentResult",
    "NoiseFineTuning",
    "NoisyWeights",
    "SweepResult",
    "TwoPhaseSchedule",
    "WeightClip",
    "crossbar",
    "deployment_sweep",
    "devices",
    "errors",
    "layers",
    "noise",
    "noisy_layers",
    "robustness_sweep",
    "set_noise_gate",
    "strip",
    "wrap",
]
