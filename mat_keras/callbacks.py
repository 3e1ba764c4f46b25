"""Training callbacks for memristor-aware training."""

import keras

from mat_keras.errors import InvalidArgumentError
from mat_keras.validation import check_integer, check_seed
from mat_keras.wrapping import noisy_layers, perturbed_variables, set_noise_gate


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
        calibration_data: sample inputs (an array) for the input ranges of
            wrappers with a crossbar: at the first noisy epoch the ranges are
            set from the inputs the clean-trained network gives each tile
            (`mat_keras.crossbar.calibrate_input_ranges`), as the anchors
            initialise learned ranges from data; None keeps their initial
            value.

    Example:

    >>> robust.fit(x, y, epochs=30, callbacks=[mat_keras.TwoPhaseSchedule(15)])
    """

    def __init__(self, clean_epochs, ramp_epochs=0, calibration_data=None):
        super().__init__()
        self.calibration_data = calibration_data
        self.clean_epochs = check_integer(clean_epochs, "clean_epochs", minimum=0)
        self.ramp_epochs = check_integer(ramp_epochs, "ramp_epochs", minimum=0)
        self._gate = 0.0

    def gate_at(self, epoch):
        """Returns the noise gate for (0-based) `epoch`."""
        if epoch < self.clean_epochs:
            return 0.0
        return min(1.0, (epoch - self.clean_epochs + 1) / (self.ramp_epochs + 1))

    def on_train_begin(self, logs=None):
        # Raises a clear error for a model without noisy layers.
        self._set_gate(self.gate_at(0), epoch=0)

    def on_epoch_begin(self, epoch, logs=None):
        self._gate = self.gate_at(epoch)
        self._set_gate(self._gate, epoch)

    def _set_gate(self, gate, epoch):
        """Sets the gate; a chip switched on or off needs a new train step."""
        starts_chip = gate > 0 and self.calibration_data is not None and epoch == self.clean_epochs
        if starts_chip:
            # The ranges start from the inputs the trained clean network now produces.
            from mat_keras.crossbar.calibration import calibrate_input_ranges

            calibrate_input_ranges(self.model, self.calibration_data, mark=False)
        if set_noise_gate(self.model, gate) and self.model.train_function is not None:
            self.model.make_train_function(force=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["noise_gate"] = self._gate
        levels = {layer.noise.sd for layer in noisy_layers(self.model) if layer.noise is not None}
        if len(levels) == 1 and None not in levels:
            logs["noise_sd"] = self._gate * levels.pop()


class NoiseFineTuning(keras.callbacks.Callback):
    """The reference implementation's "noise in backward phase": perturbs the weights themselves during training.

    In the last `epochs` epochs of `fit`, after every `every`-th optimizer
    step (counted across those epochs, so an epoch shorter than `every`
    steps does not silently skip the perturbations), each trainable weight (BatchNormalization's gamma and beta only
    with `batchnorm=True`) is replaced by `w + delta`, `delta` a fresh draw
    of `noise`; training then continues from the perturbed weights. Unlike
    memristor-aware training (`NoisyWeights`), the forward pass itself is
    clean and the noise is not undone: the baseline the reference implementation compares MAT
    with. Works on plain and wrapped models.

    Args:
        noise: a noise model or anything `mat_keras.noise.get` resolves (a
            number is a Gaussian sd in the reference implementation's convention).
        epochs: the number of final epochs with perturbations; None for all.
        every: perturb after every `every` batches (the reference implementation: 100).
        seed: integer seed of the perturbations, or None.
        batchnorm: also perturb BatchNormalization's gamma and beta.

    Example:

    >>> model.fit(x, y, epochs=30, callbacks=[mat_keras.NoiseFineTuning(0.1, epochs=10)])
    """

    def __init__(self, noise=0.1, epochs=None, every=100, seed=None, batchnorm=False):
        super().__init__()
        from mat_keras import noise as noise_lib

        self.noise = noise_lib.get(noise)
        if self.noise is None:
            raise InvalidArgumentError("NoiseFineTuning needs a noise model, got None.")
        self.epochs = None if epochs is None else check_integer(epochs, "epochs", minimum=0)
        self.every = check_integer(every, "every")
        self.seed = check_seed(seed)
        self.batchnorm = bool(batchnorm)
        self.perturbations = 0
        self._active = False
        self._steps = 0
        self._generator = None

    def on_train_begin(self, logs=None):
        self._generator = keras.random.SeedGenerator(self.seed)
        self.perturbations = 0
        self._steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        total = self.params.get("epochs") or epoch + 1
        self._active = self.epochs is None or epoch >= total - self.epochs

    def on_train_batch_end(self, batch, logs=None):
        if not self._active:
            return
        self._steps += 1
        if self._steps % self.every:
            return
        # The JAX trainer keeps the weights outside the variables during an
        # epoch; write them back first and let it pick up ours.
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        for variable in perturbed_variables(self.model, batchnorm=self.batchnorm):
            value = keras.ops.convert_to_tensor(variable)
            delta = self.noise.perturbation(value, self._generator)
            variable.assign(value + keras.ops.cast(delta, value.dtype))
        self.perturbations += 1
