"""Addons cells' weights load exactly: checked against NumPy versions of Addons' equations.

The NumPy code below follows Addons 0.23's `call` methods (`LayerNormLSTMCell`
on Keras's `LSTMCell`, `LayerNormSimpleRNNCell`, `PeepholeLSTMCell`), with
their variables' names, and shares nothing with the package.
"""

import numpy as np
import pytest

import keras_seqcells as ks

UNITS, FEATURES, BATCH, STEPS = 3, 4, 2, 5

pytestmark = pytest.mark.not_on_backend(
    "jax", "torch", reason="Keras computes some float64 ops in float32 on this backend"
)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _layer_norm(v, gamma, beta, epsilon):
    mean = v.mean(axis=-1, keepdims=True)
    variance = v.var(axis=-1, keepdims=True)
    normalised = (v - mean) / np.sqrt(variance + epsilon) * gamma
    return normalised if beta is None else normalised + beta


def _addons_layer_norm_lstm(w, x, epsilon=1e-3):
    h = c = np.zeros((x.shape[0], UNITS))
    outputs = []
    for t in range(x.shape[1]):
        z = _layer_norm(
            x[:, t] @ w["kernel"], w["kernel_norm/gamma"], w["kernel_norm/beta"], epsilon
        )
        z = z + _layer_norm(
            h @ w["recurrent_kernel"], w["recurrent_norm/gamma"], w["recurrent_norm/beta"], epsilon
        )
        z = z + w["bias"]
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        c = _sigmoid(z_f) * c + _sigmoid(z_i) * np.tanh(z_c)
        c = _layer_norm(c, w["state_norm/gamma"], w["state_norm/beta"], epsilon)
        h = _sigmoid(z_o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def _addons_layer_norm_simple_rnn(w, x, epsilon=1e-5):
    h = np.zeros((x.shape[0], UNITS))
    outputs = []
    for t in range(x.shape[1]):
        a = x[:, t] @ w["kernel"] + h @ w["recurrent_kernel"]
        h = np.tanh(_layer_norm(a, w["layernorm/gamma"], None, epsilon) + w["bias"])
        outputs.append(h)
    return np.stack(outputs, axis=1)


def _addons_peephole_lstm(w, x):
    h = c = np.zeros((x.shape[0], UNITS))
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"]
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        i = _sigmoid(z_i + w["input_gate_peephole_weights"] * c)
        f = _sigmoid(z_f + w["forget_gate_peephole_weights"] * c)
        c = f * c + i * np.tanh(z_c)
        o = _sigmoid(z_o + w["output_gate_peephole_weights"] * c)
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def _arrays(shapes, seed):
    rng = np.random.default_rng(seed)
    return {name: rng.normal(scale=0.7, size=shape) for name, shape in shapes.items()}


FUSED = 4 * UNITS
CASES = {
    "layer_norm_lstm": (
        ks.LayerNormLSTM,
        _addons_layer_norm_lstm,
        {
            "kernel": (FEATURES, FUSED),
            "recurrent_kernel": (UNITS, FUSED),
            "bias": (FUSED,),
            "kernel_norm/gamma": (FUSED,),
            "kernel_norm/beta": (FUSED,),
            "recurrent_norm/gamma": (FUSED,),
            "recurrent_norm/beta": (FUSED,),
            "state_norm/gamma": (UNITS,),
            "state_norm/beta": (UNITS,),
        },
    ),
    "layer_norm_simple_rnn": (
        ks.LayerNormSimpleRNN,
        _addons_layer_norm_simple_rnn,
        {
            "kernel": (FEATURES, UNITS),
            "recurrent_kernel": (UNITS, UNITS),
            "bias": (UNITS,),
            "layernorm/gamma": (UNITS,),
        },
    ),
    "peephole_lstm": (
        ks.PeepholeLSTM,
        _addons_peephole_lstm,
        {
            "kernel": (FEATURES, FUSED),
            "recurrent_kernel": (UNITS, FUSED),
            "bias": (FUSED,),
            "input_gate_peephole_weights": (UNITS,),
            "forget_gate_peephole_weights": (UNITS,),
            "output_gate_peephole_weights": (UNITS,),
        },
    ),
}


def _built(layer_class):
    layer = layer_class(UNITS, return_sequences=True, dtype="float64")
    layer(np.zeros((BATCH, STEPS, FEATURES)))
    return layer


@pytest.mark.parametrize("case", sorted(CASES))
def test_addons_weights_give_addons_outputs(case):
    layer_class, addons, shapes = CASES[case]
    arrays = _arrays(shapes, seed=1)
    layer = _built(layer_class)
    checkpoint_names = {f"rnn/{case}_cell/{name}:0": value for name, value in arrays.items()}
    assert ks.from_addons(checkpoint_names, layer) is layer.cell
    x = np.random.default_rng(2).normal(size=(BATCH, STEPS, FEATURES))
    np.testing.assert_allclose(np.asarray(layer(x)), addons(arrays, x), rtol=1e-10, atol=1e-12)


def test_short_names_work_and_refusals_name_the_problem():
    layer_class, _, shapes = CASES["layer_norm_simple_rnn"]
    arrays = _arrays(shapes, seed=3)
    layer = _built(layer_class)
    ks.from_addons(arrays, layer.cell)
    np.testing.assert_array_equal(np.asarray(layer.cell.layernorm_gamma), arrays["layernorm/gamma"])
    with pytest.raises(ValueError, match=r"Received: weights without \['layernorm/gamma'\]"):
        ks.from_addons({k: v for k, v in arrays.items() if k != "layernorm/gamma"}, layer)
    with pytest.raises(ValueError, match="Received: unknown name 'layernorm/beta'"):
        ks.from_addons({**arrays, "layernorm/beta": np.zeros(UNITS)}, layer)
    with pytest.raises(ValueError, match=r"Received: kernel.shape=\(5, 3\)"):
        ks.from_addons({**arrays, "kernel": np.zeros((5, UNITS))}, layer)
    with pytest.raises(TypeError, match="Received: target=LSTM"):
        ks.from_addons(arrays, ks.LSTM(UNITS))
    with pytest.raises(TypeError, match="Received: an unbuilt cell"):
        ks.from_addons(arrays, ks.LayerNormSimpleRNN(UNITS))
