"""The Keras internals of `mat_keras.compat` still mean what mat-keras takes them to mean.

A Keras release that renames or changes one fails here, with a message
naming it, before anything that relies on it fails obscurely.
"""

import keras
import numpy as np
import pytest

from mat_keras import compat
from mat_testing import to_numpy

pytestmark = pytest.mark.backends

CHANGED = f"Keras {keras.__version__} changed an internal that mat_keras/compat.py reads: "
L = keras.layers


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = L.Dense(2)

    def call(self, x):
        return self.dense(x)


def _conv_bn():
    inputs = keras.Input((6, 6, 3))
    conv = L.Conv2D(4, 3, name="conv")
    bn = L.BatchNormalization(name="bn")
    outputs = bn(conv(inputs))
    return keras.Model(inputs, outputs), conv, bn


def test_call_signature():
    assert compat.call_takes(L.Dropout(0.5), "training"), CHANGED + "call_signature_parameters"
    assert not compat.call_takes(L.Flatten(), "training"), CHANGED + "call_signature_parameters"
    assert compat.call_takes(L.LSTM(2), "mask"), CHANGED + "call_signature_parameters"


def test_graph_models_are_told_from_subclassed_ones():
    model, _, _ = _conv_bn()
    sequential = keras.Sequential([keras.Input((3,)), L.Dense(2)])
    assert compat.is_graph_model(model), CHANGED + "Functional._nodes_by_depth / _outputs"
    assert compat.is_graph_model(sequential)
    subclassed = _Subclassed()
    subclassed(np.ones((1, 3), "float32"))
    assert not compat.is_graph_model(subclassed), CHANGED + "a subclassed model now has _nodes_by_depth/_outputs"
    (output,) = compat.graph_outputs(sequential)
    assert tuple(output.shape) == (None, 2), CHANGED + "Sequential._functional"
    assert compat.graph_outputs(model) == list(model.outputs)


def test_graph_nodes_link_the_layers():
    model, conv, bn = _conv_bn()
    (node,) = compat.inbound_nodes(bn)
    assert [parent.operation for parent in node.parent_nodes] == [conv], CHANGED + "Node.parent_nodes"
    (out,) = compat.outbound_nodes(conv)
    assert out.operation is bn, CHANGED + "Layer._outbound_nodes / Node.operation"
    (tensor,) = compat.inbound_nodes(conv)[0].output_tensors
    assert tuple(tensor.shape) == (None, 4, 4, 4), CHANGED + "Node.output_tensors"


def test_attention_sublayers_hold_all_its_weights():
    mha = L.MultiHeadAttention(2, 4)
    x = np.ones((1, 3, 5), "float32")
    mha(x, x)
    sublayers = compat.tracked_sublayers(mha)
    held = {id(v) for layer in sublayers for v in layer.weights}
    assert held == {id(v) for v in mha.weights}, CHANGED + "MultiHeadAttention._layers"


def test_overlay_scope_maps_falls_through_and_replays_updates():
    dense = L.Dense(2, use_bias=False)
    dense.build((1, 3))
    bn = L.BatchNormalization(momentum=0.0)
    bn.build((4, 2))
    x = np.arange(12, dtype="float32").reshape(4, 3)
    doubled = 2 * to_numpy(dense.kernel)
    with compat.OverlayScope([(dense.kernel, doubled)]):
        out = dense(x)
        bn(out, training=True)  # an update inside the scope
    np.testing.assert_allclose(to_numpy(out), x @ doubled, rtol=1e-6)
    assert not np.allclose(to_numpy(bn.moving_mean), 0), CHANGED + "StatelessScope.add_update"
    # Inside an enclosing stateless scope: unmapped reads fall through to it.
    kernel = np.ones((3, 2), "float32")
    with keras.StatelessScope([(dense.kernel, kernel)]) as outer:
        with compat.OverlayScope([]):
            read = dense(x)
        assert outer is not None
    assert np.allclose(to_numpy(read), x @ kernel, rtol=1e-6), CHANGED + "StatelessScope.original_scope"


def test_a_missing_internal_is_a_clear_error():
    with pytest.raises(compat.KerasInternalsError, match=r"Keras internal `object._layers`.*compat.py"):
        compat.tracked_sublayers(object())
