"""Walking a model: which layers are exported, and which BatchNorms fold.

Layers are identified by their path: the tuple of names from the top model
down (`("encoder", "conv1")` for a layer of a nested model, `("bidirectional",
"forward_lstm")` for the forward RNN of a `Bidirectional`, `("mha", "query")`
for a projection of a `MultiHeadAttention` or `GroupQueryAttention`). Names
are unique inside one model, so a path is unique in the whole network, and a
clone of the model (same configs) has the same paths.

A BatchNormalization folds into the layer before it when the layer table
marks that layer's type `batchnorm_folds` (Dense, Conv, Depthwise,
Separable) and, in the graph of a functional or Sequential model, the
BatchNorm's only input is that layer's output, the layer has no activation
and feeds nothing else (and is not a model output), both are called exactly
once, and the BatchNorm normalises the layer's channel axis. Anything else stays as it is: a BatchNorm
that does not fold is kept digital.
"""

import dataclasses

import keras

from mat_keras import compat
from mat_keras import layers as layer_table
from mat_keras.export import layouts
from mat_keras.export.errors import UnsupportedLayerError


@dataclasses.dataclass
class Entry:
    """A layer whose weights become crossbar matrices.

    Attributes:
        path: tuple of names from the top model to the layer.
        layer: the Keras layer.
        spec: its `mat_keras.layers.LayerRoles`.
        batchnorm: the BatchNormalization folded into it, or None.
        batchnorm_path: that BatchNorm's path, or None.
    """

    path: tuple
    layer: object
    spec: object
    batchnorm: object = None
    batchnorm_path: tuple = None

    @property
    def name(self):
        """The path joined with `/`."""
        return "/".join(self.path)


@dataclasses.dataclass
class Plan:
    """What the exporter does with every layer of a model.

    Attributes:
        entries: exported layers (`Entry`), in model order.
        digital: `(path, layer)` of layers with weights kept digital.
    """

    entries: list
    digital: list

    def folded_paths(self):
        """Paths of the BatchNorms folded into an entry."""
        return [e.batchnorm_path for e in self.entries if e.batchnorm is not None]


def children(layer):
    """The sub-layers the walk enters: the layer table's `sublayers` of `layer`.

    Models, Bidirectional, wrappers and attention layers have them.
    """
    return layer_table.sublayers(layer)


def find(model, path):
    """Returns the layer at `path` in `model`, or None."""
    layer = model
    for name in path:
        layer = next((sub for sub in children(layer) if sub.name == name), None)
        if layer is None:
            return None
    return layer


is_graph_model = compat.is_graph_model


def foldable_pairs(model):
    """Returns `{id(producer): batchnorm}` for the BatchNorms of `model` that fold.

    Only direct layers of `model` are paired (a nested model is paired on
    its own); see the module docstring for the rule.

    Args:
        model: a Keras model.

    Returns:
        A dict from `id` of the Dense/Conv layer to the BatchNormalization.
    """
    if not is_graph_model(model):
        return {}
    outputs = compat.graph_outputs(model)
    pairs = {}
    for bn in model.layers:
        if not isinstance(bn, keras.layers.BatchNormalization):
            continue
        producer = _single_producer(bn)
        row = layer_table.lookup(producer) if producer is not None else None
        if row is None or not row.batchnorm_folds:
            continue
        if not _folds(producer, bn, outputs):
            continue
        pairs[id(producer)] = bn
    return pairs


def _single_producer(bn):
    nodes = compat.inbound_nodes(bn)
    if len(nodes) != 1 or len(nodes[0].parent_nodes) != 1:
        return None
    return nodes[0].parent_nodes[0].operation


def _folds(producer, bn, outputs):
    inbound, outbound = compat.inbound_nodes(producer), compat.outbound_nodes(producer)
    if len(inbound) != 1 or len(outbound) != 1:
        return False
    if outbound[0].operation is not bn:
        return False
    if getattr(producer, "activation", None) not in (None, keras.activations.linear):
        return False
    produced = inbound[0].output_tensors
    if len(produced) != 1 or any(produced[0] is output for output in outputs):
        return False
    rank = len(produced[0].shape)
    axes = bn.axis if isinstance(bn.axis, (list, tuple)) else [bn.axis]
    if len(axes) != 1:
        return False
    return axes[0] % rank == layer_table.output_channel_axis(producer, rank)


def plan_model(model, fold_batchnorm=True, strict=True):
    """Decides what to export from `model`.

    Args:
        model: a built Keras model without `NoisyWeights` layers.
        fold_batchnorm: fold BatchNorms into the layer before them where the
            graph allows it.
        strict: raise on layers with unsupported weights; when False they
            are left out of the plan.

    Returns:
        A `Plan`.

    Raises:
        UnsupportedLayerError: a layer holds weights of an unsupported type.
    """
    entries, digital = [], []
    _plan(model, (), fold_batchnorm, strict, entries, digital)
    return Plan(entries, digital)


def _plan(container, prefix, fold, strict, entries, digital):
    pairs = foldable_pairs(container) if fold and isinstance(container, keras.Model) else {}
    folded = {id(bn) for bn in pairs.values()}
    for layer in children(container):
        path = prefix + (layer.name,)
        if children(layer):
            _plan(layer, path, fold, strict, entries, digital)
            continue
        if id(layer) in folded:
            continue
        try:
            spec = layouts.layer_spec(layer, "/".join(path))
        except UnsupportedLayerError:
            if strict:
                raise
            continue
        if spec is None:
            if layer.weights:
                digital.append((path, layer))
            continue
        bn = pairs.get(id(layer))
        entries.append(
            Entry(
                path=path,
                layer=layer,
                spec=spec,
                batchnorm=bn,
                batchnorm_path=prefix + (bn.name,) if bn is not None else None,
            )
        )
