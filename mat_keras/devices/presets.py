"""Device presets: a PCM-like and an RRAM-like device model, with their sources.

The parts of each preset are module constants (`PCM_PROGRAMMING`,
`PCM_DRIFT`, `PCM_READ`, `RRAM_PROGRAMMING`, `RRAM_STUCK`, `RRAM_G_MIN`) so
that tests and users can build variants from them.

Example:

>>> robust = mat_keras.wrap(model, noise="pcm", seed=0)
>>> DeviceModel(programming=PCM_PROGRAMMING, drift=None)   # PCM without drift
"""

import inspect

from mat_keras.devices.components import Drift, ProgrammingNoise, ReadNoise, StuckDevices
from mat_keras.devices.model import DeviceModel
from mat_keras.devices.units import YEAR
from mat_keras.noise.registry import register

#: Programming noise of the PCM preset (Nandakumar et al., ICECS 2019), units of g_max.
PCM_PROGRAMMING = ProgrammingNoise([0.2635 / 25.0, 1.9650 / 25.0, -1.1731 / 25.0])
#: Drift of the PCM preset (Nandakumar et al., ICECS 2019; see `Drift`).
PCM_DRIFT = Drift(nu_mean=(0.0244, -0.0155, 0.049, 0.1), nu_sd=(-0.0059, -0.0125, 0.008, 0.045), t0=20.0)
#: 1/f read noise of the PCM preset (see `ReadNoise`).
PCM_READ = ReadNoise(sd=0.0088, exponent=0.65, max_sd=0.2, t_read=250e-9)

#: Programming noise of the RRAM preset: largest between the extreme states.
RRAM_PROGRAMMING = ProgrammingNoise([0.01, 0.12, -0.12])
#: Stuck devices of the RRAM preset.
RRAM_STUCK = StuckDevices(at_min=0.01, at_max=0.005)
#: g_min / g_max of the RRAM preset: 1 uS to 40 uS, as NeuRRAM.
RRAM_G_MIN = 1.0 / 40.0

# The arguments of a device model, in order, for presets given them positionally.
_ARGUMENTS = tuple(inspect.signature(DeviceModel).parameters)


class Preset(DeviceModel):
    """A device model whose arguments not given take the class's `defaults`.

    Example:

    >>> class Slow(Preset):
    ...     defaults = {"drift": {"nu_mean": 0.01}}
    >>> Slow(read=0.01).drift
    Drift(nu_mean=0.01, nu_sd=0.0, t0=20.0)
    """

    #: Argument name -> default, for the arguments whose default differs from `DeviceModel`'s.
    defaults = {}

    def __init__(self, *args, **kwargs):
        given = dict(zip(_ARGUMENTS, args))
        duplicated = sorted(given.keys() & kwargs.keys())
        if duplicated:
            raise TypeError(f"{type(self).__name__} got multiple values for {', '.join(duplicated)}.")
        super().__init__(**{**self.defaults, **given, **kwargs})


@register("pcm")
class PCM(Preset):
    """A phase-change-memory-like device: programming noise, drift, read noise.

    Weights on differential pairs with `g_min = 0` (a RESET device), as in
    Joshi et al., Nature Communications 11:2473 (2020), with the statistical
    model of Nandakumar et al., "Phase-change memory models for deep learning
    training and inference", ICECS 2019 (also IBM aihwkit's
    `PCMLikeNoiseModel`, `g_max` = 25 uS):

    - programming noise `sd = 0.2635 + 1.9650 g - 1.1731 g**2` uS, here in
      units of `g_max` (`PCM_PROGRAMMING`);
    - drift `g(t) = g0 ((t + 20 s) / 20 s) ** -nu`, `nu` per device normal
      with a mean of 0.049 to 0.1 and an sd of 0.008 to 0.045, larger at low
      conductance (`PCM_DRIFT`, see `Drift`);
    - 1/f read noise, relative sd `min(0.0088 g**-0.65, 0.2) *
      sqrt(log((t + t_read) / (2 t_read)))`, `t_read` = 250 ns (`PCM_READ`).

    The arguments are those of `DeviceModel`; those not given take these
    defaults (`PCM.defaults`). For training, `perturbation` reads at `time`, by default one year after
    programming (the end of the horizon `deployment_sweep` evaluates by
    default), drift compensated, so the network learns the drift spread and
    the accumulated read noise as well as the programming error.

    Example:

    >>> robust = mat_keras.wrap(model, noise="pcm", seed=0)
    >>> mat_keras.noise.get("pcm").with_time(365 * 86400.0)
    """

    defaults = {"programming": PCM_PROGRAMMING, "drift": PCM_DRIFT, "read": PCM_READ, "time": YEAR}


@register("rram")
class RRAM(Preset):
    """A resistive-RAM-like device: state-dependent programming noise, stuck devices, no drift.

    Differential pairs from 1 uS to 40 uS (`g_min = 1/40` of `g_max`), the
    range of the NeuRRAM chip (Wan et al., Nature 608:504, 2022).
    Programming noise after write-verify, largest between the extreme
    states: `sd = 0.01 + 0.12 g (1 - g)` in units of `g_max` (1.6 uS at mid
    range); 1 % of devices stuck at `g_min` and 0.5 % at `g_max`. These two
    are illustrative values of our choosing, inside the ranges reported for
    HfOx RRAM arrays (stuck-at fault rates from well below 1 % for verified
    arrays to several % for unverified ones), not a fit to one chip; measure
    your own devices and use `mat_keras.devices.Measured`.

    The arguments are those of `DeviceModel`; those not given take these
    defaults (`RRAM.defaults`).

    Example:

    >>> mat_keras.noise.get("rram")
    """

    defaults = {"programming": RRAM_PROGRAMMING, "stuck": RRAM_STUCK, "g_min": RRAM_G_MIN}
