"""Training callbacks for memristor-aware training."""

import keras

from mat_keras.errors import InvalidArgumentError
from mat_keras.wrapping import noisy_layers, set_noise_gate


def _check_epochs(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"{name} must be an integer >= 0, got {value!r}.")
    return value


class TwoPhaseSchedule(keras.callbacks.Callback):
    """Trains clean for `clean_epochs` epochs, then with the weight noise on.

    The schedule sets the noise gate of every `NoisyWeights` layer at the start
    of each epoch: 0 before epoch `clean_epochs`, then rising linearly over
    `ramp_epochs` epochs to 1 (at once when `ramp_epochs=0`). The gate is a
    variable, so the change reaches the compiled train step. The phase follows
    from the epoch index alone, so a run resumed by
    `keras.callbacks.BackupAndRestore` continues in the right phase. Each
    epoch's logs get `noise_gate` and, when all noisy layers share one noise
    level, `noise_sd` (gate times that level).

    Args:
        clean_epochs: number of clean epochs before the noise starts.
        ramp_epochs: epochs over which the noise rises to its full level.

    Example:

    >>> robust.fit(x, y, epochs=30, callbacks=[mat_keras.TwoPhaseSchedule(15)])
    """

    def __init__(self, clean_epochs, ramp_epochs=0):
        super().__init__()
        self.clean_epochs = _check_epochs(clean_epochs, "clean_epochs")
        self.ramp_epochs = _check_epochs(ramp_epochs, "ramp_epochs")
        self._gate = 0.0

    def gate_at(self, epoch):
        """Returns the noise gate for (0-based) `epoch`."""
        if epoch < self.clean_epochs:
            return 0.0
        return min(1.0, (epoch - self.clean_epochs + 1) / (self.ramp_epochs + 1))

    def on_train_begin(self, logs=None):
        # Raises a clear error for a model without noisy layers.
        set_noise_gate(self.model, self.gate_at(0))

    def on_epoch_begin(self, epoch, logs=None):
        self._gate = self.gate_at(epoch)
        set_noise_gate(self.model, self._gate)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["noise_gate"] = self._gate
        levels = {layer.noise.sd for layer in noisy_layers(self.model)}
        if len(levels) == 1 and None not in levels:
            logs["noise_sd"] = self._gate * levels.pop()

