"""BatchNormalization folding, and rebuilding a model with new weights.

In inference a BatchNorm computes `y = (x - mean) / sqrt(var + eps) * gamma
+ beta` per channel: an affine map `y = factor * x + shift`. After a Dense
or Conv layer with no activation, `factor` scales the layer's output columns
and `shift` becomes part of its bias:

    kernel' = kernel * factor        (per output column)
    bias'   = bias * factor + shift  (bias = 0 if the layer had none)

How a folded model is represented (by `export.fold_batchnorm` and by
`export.apply_tables`): a copy of the model in which each folded BatchNorm is
replaced by a `keras.layers.Identity` of the same name and the layer before
it holds the folded kernel and bias (a layer built with `use_bias=False` is
rebuilt with a bias). Outputs stay those of the original model; only the
BatchNorm's training-mode behaviour is gone, as on a chip.
"""

import keras
import numpy as np

from mat_keras.export import graph, layouts
from mat_keras.errors import InvalidArgumentError


def batchnorm_affine(bn):
    """Returns the per-channel `(factor, shift)` of a BatchNorm in inference.

    Args:
        bn: a built `keras.layers.BatchNormalization`.

    Returns:
        Two float64 arrays of shape `(channels,)`.

    Example:

    >>> factor, shift = batchnorm_affine(model.get_layer("bn"))
    """
    mean = _numpy(bn.moving_mean)
    variance = _numpy(bn.moving_variance)
    gamma = _numpy(bn.gamma) if bn.scale else np.ones_like(mean)
    beta = _numpy(bn.beta) if bn.center else np.zeros_like(mean)
    factor = gamma / np.sqrt(variance + float(bn.epsilon))
    return factor, beta - mean * factor


def fold(matrix, bias, factor, shift):
    """Folds a BatchNorm affine map into a matrix whose columns are its channels.

    Args:
        matrix: 2-D array, columns = channels.
        bias: 1-D bias of the columns, or None (no bias).
        factor: per-channel factor from `batchnorm_affine`.
        shift: per-channel shift from `batchnorm_affine`.

    Returns:
        `(matrix * factor, bias * factor + shift)` in the matrix's dtype.

    Example:

    >>> kernel, bias = fold(np.ones((2, 3)), None, np.full(3, 2.0), np.zeros(3))
    """
    dtype = matrix.dtype
    folded = matrix * factor.astype(dtype)
    base = np.zeros(factor.shape) if bias is None else np.asarray(bias, np.float64)
    return folded, (base * factor + shift).astype(dtype)


def _numpy(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)


def rebuild(model, folded_paths, values):
    """Returns a copy of `model` with BatchNorms replaced and weights set.

    Args:
        model: a Keras model.
        folded_paths: paths of BatchNorms to replace by `Identity`.
        values: `{path: {attr: array}}`: variables to set in the copy
            (attribute paths as in the layer table, e.g. `"cell.kernel"`). A layer
            given a `bias` it was built without is rebuilt with one.

    Returns:
        The new model; every other weight is copied from `model`.

    Raises:
        InvalidArgumentError: the model cannot be copied, or a value does not
            fit its variable.
    """
    replaced = {id(_find(model, path)) for path in folded_paths}
    needs_bias = {
        id(_find(model, path))
        for path, attrs in values.items()
        if any(attr.split(".")[-1] == "bias" for attr in attrs)
    }

    identities = set()

    def clone_function(layer):
        if id(layer) in replaced:
            identity = keras.layers.Identity(name=layer.name)
            identities.add(id(identity))
            return identity
        config = layer.get_config()
        if id(layer) in needs_bias and config.get("use_bias") is False:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    def call_function(layer, *args, **kwargs):
        # The graph calls a BatchNorm with `training`/`mask`; Identity takes
        # only its input.
        if id(layer) in identities:
            return layer(args[0])
        return layer(*args, **kwargs)

    if graph.is_graph_model(model):
        clone = keras.models.clone_model(
            model,
            clone_function=clone_function,
            # Keras refuses a call_function for a Sequential model, whose
            # layers are called without extra arguments anyway.
            call_function=None if isinstance(model, keras.Sequential) else call_function,
            recursive=True,
        )
    elif replaced or needs_bias:
        raise InvalidArgumentError(
            f"Model '{model.name}' is subclassed; folded tables need a Sequential or functional model."
        )
    else:
        try:
            clone = keras.models.clone_model(model)
        except Exception as error:  # Keras raises several types here.
            raise InvalidArgumentError(
                f"Model '{model.name}' cannot be copied ({error}); give it a get_config() "
                "or use a Sequential or functional model."
            ) from error
    _copy_weights(model, clone, replaced)
    for path, attrs in values.items():
        layer = graph.find(clone, path)
        for attr, array in attrs.items():
            _assign(layer, attr, array, "/".join(path))
    return clone


def _find(model, path):
    layer = graph.find(model, path)
    if layer is None:
        raise InvalidArgumentError(f"Model '{model.name}' has no layer '{'/'.join(path)}'.")
    return layer


def _copy_weights(source, target, skip):
    twins = {layer.name: layer for layer in target.layers}
    for layer in source.layers:
        twin = twins.get(layer.name)
        if twin is None or id(layer) in skip:
            continue
        if isinstance(layer, keras.Model):
            _copy_weights(layer, twin, skip)
        elif len(twin.weights) == len(layer.weights):
            twin.set_weights(layer.get_weights())
        # A layer rebuilt with a bias gets all its variables from `values`.


def _assign(layer, attr, array, name):
    variable = layouts.get_attr(layer, attr)
    if variable is None:
        raise InvalidArgumentError(f"Layer '{name}' has no variable '{attr}'.")
    array = np.asarray(array)
    if tuple(variable.shape) != array.shape:
        raise InvalidArgumentError(
            f"Layer '{name}' variable '{attr}' has shape {tuple(variable.shape)}, "
            f"the tables give {array.shape}."
        )
    variable.assign(array.astype(keras.backend.standardize_dtype(variable.dtype)))
