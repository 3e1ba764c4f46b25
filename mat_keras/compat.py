"""The few Keras internals mat-keras relies on, in one place.

Keras 3 exposes no public API for these: the graph of a functional model
(which layer feeds which), the sub-layers an attention layer tracks, whether
a model is functional, and a stateless scope that falls through to the
enclosing one. Everything else mat-keras does goes through public Keras.
Each read here names the attribute, so a Keras release that changes one
fails with a message that says which (see `tests/test_compat.py`, which
exercises every function on the installed Keras).
"""

import keras


class KerasInternalsError(RuntimeError):
    """The installed Keras lacks an internal attribute mat-keras reads."""


def _private(obj, attr):
    """Returns `obj.<attr>`, a private Keras attribute, or raises clearly."""
    try:
        return getattr(obj, attr)
    except AttributeError:
        raise KerasInternalsError(
            f"mat-keras reads the Keras internal `{type(obj).__name__}.{attr}`, which Keras "
            f"{keras.__version__} does not have; mat_keras/compat.py needs updating for it."
        ) from None


def call_takes(layer, argument):
    """Whether `layer.call` takes `argument` (`"training"`, `"mask"`, ...).

    Reads Keras's public `Layer.call_signature_parameters`.
    """
    return argument in layer.call_signature_parameters


def is_graph_model(model):
    """True for Sequential and functional models (whose graph is known).

    Functional models are `Functional` instances, which Keras does not export
    publicly; a model built from symbolic inputs has `_nodes_by_depth` and
    its `_outputs`, a subclassed model has neither.
    """
    if isinstance(model, keras.Sequential):
        return True
    return hasattr(model, "_nodes_by_depth") and bool(getattr(model, "_outputs", None))


def graph_outputs(model):
    """The symbolic output tensors of a Sequential or functional model, or [].

    A built Sequential model keeps its graph in the functional model
    `_functional`; an unbuilt one has none.
    """
    graph = _private(model, "_functional") if isinstance(model, keras.Sequential) else model
    return list(getattr(graph, "outputs", None) or []) if graph is not None else []


def inbound_nodes(layer):
    """The graph nodes of `layer`'s calls (each with `parent_nodes`, `output_tensors`)."""
    return _private(layer, "_inbound_nodes")


def outbound_nodes(layer):
    """The graph nodes of the layers called on `layer`'s outputs (each with `operation`)."""
    return _private(layer, "_outbound_nodes")


def tracked_sublayers(layer):
    """Every sub-layer `layer` tracks, public attribute or not.

    An attention layer lists no sub-layers publicly; `_layers` holds all it
    tracks (query, key, value and output projections, a gate if any,
    softmax, dropout), so none of their weights is missed.
    """
    return list(_private(layer, "_layers"))


class OverlayScope(keras.StatelessScope):
    """A stateless scope that overrides some variables and defers the rest.

    Reads of a mapped variable return its mapped value; reads of any other
    variable fall through to the enclosing scope (or the variable itself:
    the JAX trainer runs the model in a stateless scope of its own). Updates
    made inside (moving statistics, RNG states) are replayed on the
    enclosing scope, or assigned, on exit. Losses added inside are handed to
    the enclosing scope as they come, or collected in `losses`.

    It relies on `StatelessScope`'s attributes `state_mapping` (id ->
    value), `original_scope` (set by `__enter__`), `collect_losses` and
    `losses`, which Keras documents only in its source.

    Args:
        state_mapping: `(variable, value)` pairs to override.

    Example:

    >>> with OverlayScope([(layer.kernel, noisy_kernel)]) as scope:
    ...     outputs = layer(inputs)
    """

    def __init__(self, state_mapping):
        super().__init__(state_mapping, initialize_variables=False)
        self._updates = []

    def __enter__(self):
        self.collect_losses = True
        scope = super().__enter__()
        self._outer = _private(self, "original_scope")
        return scope

    def get_current_value(self, variable):
        value = self.state_mapping.get(id(variable))
        if value is None and self._outer is not None:
            value = self._outer.get_current_value(variable)
        return value

    def add_update(self, update):
        variable, value = update
        self.state_mapping[id(variable)] = value
        self._updates.append((variable, value))

    def add_loss(self, loss):
        if self._outer is not None:
            if self._outer.collect_losses:
                self._outer.add_loss(loss)
        else:
            self.losses.append(loss)

    def __exit__(self, *args, **kwargs):
        super().__exit__(*args, **kwargs)
        for variable, value in self._updates:
            if self._outer is not None:
                self._outer.add_update((variable, value))
            else:
                variable.assign(value)


class intercepted_calls:
    """Runs some layers' calls through other functions while the context is open.

    Keras's `Layer.__call__` (through `Operation.__call__`) calls
    `self.call`, so an instance attribute `call` takes the class's place
    for that layer alone: a container (MultiHeadAttention, Bidirectional, a
    model) then runs its own code, and each intercepted sub-layer computes
    with the given function. The attributes are removed on exit, also on
    error.

    Args:
        calls: `{layer: function}`; each function takes the layer's call
            arguments.

    Example:

    >>> with intercepted_calls({mha._query_dense: chip_query}):
    ...     outputs = mha(query, value)
    """

    def __init__(self, calls):
        self.calls = calls

    def __enter__(self):
        for layer, function in self.calls.items():
            if "call" in vars(layer):
                raise KerasInternalsError(
                    f"Layer '{layer.name}' already has an intercepted call; chip forwards do not nest."
                )
            object.__setattr__(layer, "call", function)
        return self

    def __exit__(self, *exc):
        for layer in self.calls:
            vars(layer).pop("call", None)
        return False


class unlocked_state:
    """Lets a built layer create variables while the context is open.

    Keras locks a layer's state once it is built; a wrapper whose layer is
    built at its first call, from all its inputs (MultiHeadAttention), only
    then knows the shapes of the crossbar's input-range variables. Keras
    unlocks the same way (`Layer._tracker`) to quantise a built layer.
    """

    def __init__(self, layer):
        self.tracker = _private(layer, "_tracker")

    def __enter__(self):
        self.locked = self.tracker.locked
        self.tracker.unlock()
        return self

    def __exit__(self, *exc):
        if self.locked:
            self.tracker.lock()
        return False
