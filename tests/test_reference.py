"""The cells, layers, `gates` and `trace` against the float64 NumPy reference of the
equations (`tests/reference.py`; the README's "The equations" section)."""

import zlib

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from tests import reference
from tests.cases import CASE_IDS, CASES, FLOAT64

BATCH, INPUT_DIM, UNITS = 3, 3, 4

KINDS = {
    ks.SimpleRNNCell: "simple_rnn",
    ks.LSTMCell: "lstm",
    ks.GRUCell: "gru",
    ks.LayerNormLSTMCell: "layer_norm_lstm",
    ks.LayerNormSimpleRNNCell: "layer_norm_simple_rnn",
    ks.LayerNormGRUCell: "layer_norm_gru",
    ks.PeepholeLSTMCell: "peephole_lstm",
    ks.CIFGLSTMCell: "cifg_lstm",
}

# Options the cell accepts; "activation" swaps a different activation in.
OPTIONS = ["default", "no_bias", "activation"]
OTHER_ACTIVATION = {
    "simple_rnn": {"activation": "relu"},
    "lstm": {"recurrent_activation": "hard_sigmoid"},
    "gru": {"recurrent_activation": "hard_sigmoid"},
    "layer_norm_lstm": {"recurrent_activation": "hard_sigmoid"},
    "layer_norm_simple_rnn": {"activation": "relu"},
    "layer_norm_gru": {"recurrent_activation": "hard_sigmoid"},
    "peephole_lstm": {"recurrent_activation": "hard_sigmoid"},
    "cifg_lstm": {"recurrent_activation": "hard_sigmoid"},
}
REFERENCE_OPTIONS = ("activation", "recurrent_activation", "reset_after")

DTYPES = {"float64": 1e-10, "float32": 1e-5}
# A layer norm divides by the standard deviation of a few values (4 units
# here), which scales float32 rounding up; float64 keeps 1e-10.
LAYER_NORM_FLOAT32 = 1e-4

# Sequence lengths. The layer runs every length with every option; the generic
# RNN and `trace` run the longest one with the default options only.
TIMESTEPS = (1, 7, 50)
LONG = 50


class Problem:
    """Random weights, inputs and non-zero initial states, rounded to `dtype`."""

    def __init__(self, case, option, dtype):
        self.kind = KINDS[case.cell_class]
        self.options = {
            "default": {},
            "no_bias": {"use_bias": False},
            "activation": OTHER_ACTIVATION[self.kind],
        }[option]
        merged = {**case.kwargs, **self.options}
        self.reference_options = {k: v for k, v in merged.items() if k in REFERENCE_OPTIONS}
        self.dtype = dtype
        self.atol = DTYPES[dtype]
        if dtype == "float32" and self.kind.startswith("layer_norm"):
            self.atol = LAYER_NORM_FLOAT32
        self.rng = np.random.default_rng(zlib.crc32(f"{case.id}/{option}/{dtype}".encode()))
        shapes = reference.weight_shapes(
            self.kind,
            INPUT_DIM,
            UNITS,
            use_bias=merged.get("use_bias", True),
            output_units=case.output_units,
        )
        self.weights = {name: self.draw(shape) for name, shape in shapes.items()}

    def draw(self, shape, scale=0.5):
        return (scale * self.rng.normal(size=shape)).astype(self.dtype).astype(np.float64)

    def sequence(self, timesteps):
        inputs = self.draw((BATCH, timesteps, INPUT_DIM), scale=1.0)
        states = [self.draw((BATCH, UNITS)) for _ in range(reference.N_STATES[self.kind])]
        return inputs, states

    def feed(self, array):
        return np.asarray(array, dtype=self.dtype)

    def expected(self, inputs, states):
        return reference.run(self.kind, self.weights, inputs, states, **self.reference_options)

    def check(self, actual, expected, what):
        actual = np.asarray(keras.ops.convert_to_numpy(actual), dtype=np.float64)
        assert actual.shape == expected.shape, what
        np.testing.assert_allclose(actual, expected, rtol=self.atol, atol=self.atol, err_msg=what)

    def check_run(self, result, expected, what):
        outputs, *states = result
        expected_outputs, expected_states, _ = expected
        assert len(states) == len(expected_states), what
        self.check(outputs, expected_outputs, f"{what}: outputs")
        for k, (state, value) in enumerate(zip(states, expected_states, strict=True)):
            self.check(state, value, f"{what}: final state {k}")

    def check_intermediates(self, actual, expected, what):
        assert sorted(actual) == sorted(expected), what
        for name, value in expected.items():
            self.check(actual[name], value, f"{what}: {name!r}")


with_case = pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
with_option = pytest.mark.parametrize("option", OPTIONS)
with_dtype = pytest.mark.parametrize(
    "dtype", [FLOAT64 if dtype == "float64" else dtype for dtype in DTYPES]
)


@with_case
@with_option
@with_dtype
def test_cell_layers_and_trace_match_reference(case, option, dtype):
    p = Problem(case, option, dtype)
    cell = case.cell(UNITS, dtype=dtype, **p.options)
    generic = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype=dtype)
    generic.build((BATCH, None, INPUT_DIM))
    cell.set_named_weights(p.weights)
    layer = case.layer(UNITS, return_sequences=True, return_state=True, dtype=dtype, **p.options)
    layer.build((BATCH, None, INPUT_DIM))
    layer.cell.set_named_weights(p.weights)

    got = cell.named_weights()
    assert sorted(got) == sorted(p.weights)
    for name, value in p.weights.items():
        assert isinstance(got[name], np.ndarray), name
        np.testing.assert_array_equal(got[name], value, err_msg=f"named_weights: {name}")

    inputs, states = p.sequence(1)
    gates = cell.gates(p.feed(inputs[:, 0, :]), [p.feed(s) for s in states])
    _, _, expected = p.expected(inputs, states)
    first_step = {name: value[:, 0] for name, value in expected.items()}
    p.check_intermediates(gates, first_step, "cell.gates")

    for timesteps in TIMESTEPS:
        inputs, states = p.sequence(timesteps)
        expected = p.expected(inputs, states)
        feed = {"initial_state": [p.feed(s) for s in states]}
        x = p.feed(inputs)
        p.check_run(layer(x, **feed), expected, f"{case.layer_class.__name__}, T={timesteps}")
        if timesteps == LONG and option != "default":
            continue
        p.check_run(generic(x, **feed), expected, f"keras.layers.RNN, T={timesteps}")
        traced = ks.trace(layer, x, **feed)
        p.check_intermediates(traced, expected[2], f"trace, T={timesteps}")
