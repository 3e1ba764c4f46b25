"""One alias registry for noise models and device components.

Classes register under a short alias (`"gaussian"`, `"pcm"`, `"drift"`, ...)
in the namespace of their `kind`: `"noise"` for noise models,
`"component"` for the parts of a device model (`mat_keras.devices`), so the
noise model `"measured"` and the programming component `"measured"` do not
collide. `get` resolves an object of one kind from an instance, a number, an
alias or a config, as Keras's `quantizers.get` and larq's quantisers do;
`serialize` and `deserialize` write and read the configs that `.keras` files
and JSON files hold.

Registering also registers the class with Keras serialisation (package
`mat_keras`, names `mat_keras>ClassName`), so saved models load without
`custom_objects`.

Example:

>>> get(0.2)
Gaussian(sd=0.2, relative_to='range')
>>> get({"class_name": "drift", "config": {"nu_mean": 0.05}}, kind=COMPONENT)
Drift(nu_mean=0.05, nu_sd=0.0, t0=20.0)
"""

import numbers

import keras
import numpy as np

from mat_keras.errors import InvalidArgumentError
from mat_keras.noise.base import Configurable

#: The kind of noise models (`NoiseModel.kind`).
NOISE = "noise"
#: The kind of a device model's components (`mat_keras.devices.Component.kind`).
COMPONENT = "component"

_LABELS = {NOISE: "noise model", COMPONENT: "device component"}

# kind -> {alias: class}
_ALIASES = {}

# The alias of the class a bare number stands for, where a kind has one: a
# number given as noise is a Gaussian sd (the reference implementation's
# convention).
_DEFAULTS = {NOISE: "gaussian"}


def register(alias):
    """Class decorator: registers a class under `alias` in its kind's namespace.

    The kind is the class's `kind` attribute (inherited from `NoiseModel` or
    `mat_keras.devices.Component`).

    Args:
        alias: lower-case name that `get` resolves to the class.

    Returns:
        The decorator; it returns the class, registered with Keras too.

    Raises:
        InvalidArgumentError: the alias is taken by another class of the kind.

    Example:

    >>> @register("uniform")
    ... class Uniform(NoiseModel):
    ...     ...
    """

    def decorator(cls):
        table = _ALIASES.setdefault(cls.kind, {})
        if alias in table and table[alias] is not cls:
            raise InvalidArgumentError(
                f"The {_label(cls.kind)} alias '{alias}' is already registered for "
                f"{table[alias].__name__}."
            )
        table[alias] = cls
        return keras.saving.register_keras_serializable(package="mat_keras")(cls)

    return decorator


def aliases(kind=NOISE):
    """Returns the aliases registered for `kind`, sorted."""
    return sorted(_ALIASES.get(kind, {}))


def lookup(name, kind=NOISE):
    """Returns the class of `kind` registered as `name`, or None.

    Args:
        name: an alias (any case) or a class name.
        kind: the namespace.

    Example:

    >>> lookup("RRAM")
    <class 'mat_keras.devices.presets.RRAM'>
    """
    table = _ALIASES.get(kind, {})
    if not isinstance(name, str):
        return None
    if name.lower() in table:
        return table[name.lower()]
    return next((cls for cls in table.values() if cls.__name__ == name), None)


def serialize(instance):
    """Returns the Keras config dict of a registered object (None stays None).

    Example:

    >>> serialize(Gaussian(0.1))["registered_name"]
    'mat_keras>Gaussian'
    """
    if instance is None:
        return None
    return keras.saving.serialize_keras_object(instance)


def deserialize(config, kind=NOISE, name=None):
    """Builds an object of `kind` from `{"class_name": ..., "config": {...}}`.

    `class_name` is an alias or a class name of the registry (configs that
    `serialize` wrote, and the short form `{"class_name": "pcm"}`); any other
    Keras-serialisable class of the kind loads through Keras.

    Args:
        config: the config dict.
        kind: the namespace.
        name: the argument's name, for error messages.

    Raises:
        InvalidArgumentError: the class is unknown, of another kind, or its
            arguments are invalid.
    """
    class_name = config["class_name"]
    cls = lookup(class_name, kind)
    if cls is not None:
        return _build(cls.from_config, dict(config.get("config") or {}), name)
    try:
        instance = keras.saving.deserialize_keras_object(config)
    except InvalidArgumentError:
        raise
    except (TypeError, ValueError) as error:
        raise _unknown(class_name, kind, name) from error
    if not _is_of_kind(instance, kind):
        raise _unknown(class_name, kind, name)
    return instance


def get(identifier, kind=NOISE, default=None, name=None):
    """Resolves an object of `kind` from an instance, number, alias or config.

    Args:
        identifier: None; an object of `kind` (returned as is); a number or a
            list of numbers (the first argument of `default`); a dict of
            `default`'s arguments; a string alias (default arguments); or a
            config dict `{"class_name": alias or class name, "config": {...}}`
            as `serialize` writes it.
        kind: `NOISE` or `COMPONENT`.
        default: the class numbers and argument dicts stand for; None for the
            kind's own (`Gaussian` for noise, none for components).
        name: the argument being resolved (a device model's `"programming"`
            slot, ...), for error messages.

    Returns:
        An object of `kind`, or None for None.

    Raises:
        InvalidArgumentError: the identifier names nothing of the kind or its
            parameters are invalid.

    Example:

    >>> get(0.2)
    Gaussian(sd=0.2, relative_to='range')
    >>> get({"class_name": "multiplicative", "config": {"sd": 0.05}})
    Multiplicative(sd=0.05)
    >>> get(0.02, kind=COMPONENT, default=ProgrammingNoise, name="programming")
    ProgrammingNoise(sd=0.02)
    """
    if identifier is None or _is_of_kind(identifier, kind):
        return identifier
    if default is None and kind in _DEFAULTS:
        default = lookup(_DEFAULTS[kind], kind)
    if isinstance(identifier, dict):
        if "class_name" in identifier:
            return deserialize(identifier, kind, name)
        if default is not None:
            return _build(default.from_config, dict(identifier), name)
    elif isinstance(identifier, str):
        cls = lookup(identifier, kind)
        if cls is not None:
            return cls()
        # An unknown alias given as a plain argument: say which ones exist;
        # in a named slot, the sentence below also says what else it takes.
        if name is None:
            raise _unknown(identifier, kind, name)
    elif default is not None and _is_numeric(identifier):
        return default(identifier)
    raise _cannot_interpret(identifier, kind, default, name)


def _is_of_kind(instance, kind):
    return isinstance(instance, Configurable) and instance.kind == kind


def _is_numeric(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _build(factory, arguments, name):
    """`factory(arguments)`; a wrong argument name is an InvalidArgumentError."""
    try:
        return factory(arguments)
    except TypeError as error:
        raise InvalidArgumentError(f"{name or 'config'}: {error}.") from None


def _label(kind):
    return _LABELS.get(kind, kind)


def _unknown(class_name, kind, name):
    known = ", ".join(aliases(kind))
    if name is None:
        return InvalidArgumentError(
            f"Unknown {_label(kind)} {class_name!r}; known aliases: {known}."
        )
    return InvalidArgumentError(
        f"{name}: unknown {_label(kind)} {class_name!r}; known aliases: {known}."
    )


def _cannot_interpret(identifier, kind, default, name):
    known = ", ".join(aliases(kind))
    if name is None:
        return InvalidArgumentError(
            f"Cannot interpret {identifier!r} as a {_label(kind)}; pass a "
            f"{_label(kind)}, a number, one of {known}, or a config dict."
        )
    what = f"a {default.__name__}, a number, a dict of its arguments" if default else "a config dict"
    return InvalidArgumentError(
        f"{name} must be {what}, one of {known}, or None; got {identifier!r}."
    )
