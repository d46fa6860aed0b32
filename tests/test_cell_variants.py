"""The cell variants' own facts: their equations against TensorFlow Addons' construction
(Keras's `LayerNormalization`), the peephole LSTM's reduction to the LSTM, masks in
float64, and their arguments.

The shared checks (reference, fast paths, gradients, serialization, mixed
precision) run over them through `tests/cases.py`.
"""

import keras
import numpy as np
import pytest
from keras import ops

import keras_seqcells as ks
from tests import reference
from tests.cases import FLOAT64, VARIANT_CASES
from tests.test_fast_paths import MASK, masked_expected
from tests.test_reference import BATCH, INPUT_DIM, UNITS, Problem

TIMESTEPS = 6
with_variant = pytest.mark.parametrize("case", VARIANT_CASES, ids=[c.id for c in VARIANT_CASES])


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def _random_sequence(rng, timesteps=TIMESTEPS):
    return rng.normal(size=(BATCH, timesteps, INPUT_DIM))


def _built(layer_class, weights=None, **kwargs):
    layer = layer_class(UNITS, return_sequences=True, return_state=True, dtype="float64", **kwargs)
    layer.build((BATCH, None, INPUT_DIM))
    if weights is not None:
        layer.cell.set_named_weights(weights)
    return layer


def _random_named_weights(cell, rng):
    return {
        name: 0.5 * rng.normal(size=value.shape) for name, value in cell.named_weights().items()
    }


def _keras_layer_norm(size, gamma, beta, epsilon):
    """Keras's own `LayerNormalization` with the given scale (and shift, if any)."""
    norm = keras.layers.LayerNormalization(
        epsilon=epsilon, center=beta is not None, dtype="float64"
    )
    norm.build((None, size))
    norm.set_weights([gamma] if beta is None else [gamma, beta])
    return norm


# --------------------------------------------- Addons' construction, step by step
def _addons_layer_norm_lstm(cell, x, states):
    """Addons' `LayerNormLSTMCell.call`: three `LayerNormalization` layers around an LSTM."""
    units, eps = cell.units, cell.norm_epsilon
    kernel, recurrent = _numpy(cell.kernel), _numpy(cell.recurrent_kernel)
    kernel_norm = _keras_layer_norm(
        4 * units, _numpy(cell.kernel_norm_gamma), _numpy(cell.kernel_norm_beta), eps
    )
    recurrent_norm = _keras_layer_norm(
        4 * units, _numpy(cell.recurrent_norm_gamma), _numpy(cell.recurrent_norm_beta), eps
    )
    state_norm = _keras_layer_norm(
        units, _numpy(cell.state_norm_gamma), _numpy(cell.state_norm_beta), eps
    )
    h, c = states
    outputs = []
    for t in range(x.shape[1]):
        z = kernel_norm(x[:, t] @ kernel) + recurrent_norm(h @ recurrent) + _numpy(cell.bias)
        z0, z1, z2, z3 = ops.split(z, 4, axis=-1)
        i, f, o = ops.sigmoid(z0), ops.sigmoid(z1), ops.sigmoid(z3)
        c = state_norm(f * c + i * ops.tanh(z2))
        h = o * ops.tanh(c)
        outputs.append(h)
    return ops.stack(outputs, axis=1), [h, c]


def _addons_layer_norm_simple_rnn(cell, x, states):
    """Addons' `LayerNormSimpleRNNCell.call`: sum, scale-only layer norm, bias, activation."""
    norm = _keras_layer_norm(cell.units, _numpy(cell.layernorm_gamma), None, cell.layernorm_epsilon)
    kernel, recurrent = _numpy(cell.kernel), _numpy(cell.recurrent_kernel)
    (h,) = states
    outputs = []
    for t in range(x.shape[1]):
        h = ops.tanh(norm(x[:, t] @ kernel + h @ recurrent) + _numpy(cell.bias))
        outputs.append(h)
    return ops.stack(outputs, axis=1), [h]


def _layer_norm_gru_from_keras_norms(cell, x, states):
    """The layer-normalised GRU written with Keras's `LayerNormalization` layers."""
    units, eps = cell.units, cell.norm_epsilon
    kernel, recurrent = _numpy(cell.kernel), _numpy(cell.recurrent_kernel)
    kernel_norm = _keras_layer_norm(
        3 * units, _numpy(cell.kernel_norm_gamma), _numpy(cell.kernel_norm_beta), eps
    )
    recurrent_norm = _keras_layer_norm(
        3 * units, _numpy(cell.recurrent_norm_gamma), _numpy(cell.recurrent_norm_beta), eps
    )
    b_z, b_r, b_h = np.split(_numpy(cell.bias), 3)
    (h,) = states
    outputs = []
    for t in range(x.shape[1]):
        u_z, u_r, u_h = ops.split(kernel_norm(x[:, t] @ kernel), 3, axis=-1)
        v_z, v_r, v_h = ops.split(recurrent_norm(h @ recurrent), 3, axis=-1)
        z = ops.sigmoid(u_z + v_z + b_z)
        r = ops.sigmoid(u_r + v_r + b_r)
        h = (1 - z) * h + z * ops.tanh(u_h + r * v_h + b_h)
        outputs.append(h)
    return ops.stack(outputs, axis=1), [h]


@pytest.mark.tensorflow_only(reason="float64 layer norms at 1e-10 need float64 arithmetic")
@pytest.mark.parametrize(
    "layer_class, construction",
    [
        (ks.LayerNormLSTM, _addons_layer_norm_lstm),
        (ks.LayerNormSimpleRNN, _addons_layer_norm_simple_rnn),
        (ks.LayerNormGRU, _layer_norm_gru_from_keras_norms),
    ],
    ids=["lstm", "simple_rnn", "gru"],
)
@pytest.mark.parametrize("epsilon", ["default", 0.25])
def test_layer_norm_cells_match_keras_layer_normalization(layer_class, construction, epsilon):
    rng = np.random.default_rng(3)
    argument = "layernorm_epsilon" if layer_class is ks.LayerNormSimpleRNN else "norm_epsilon"
    kwargs = {} if epsilon == "default" else {argument: epsilon}
    layer = _built(layer_class, **kwargs)
    layer.cell.set_named_weights(_random_named_weights(layer.cell, rng))
    x = _random_sequence(rng)
    states = [0.5 * rng.normal(size=(BATCH, UNITS)) for _ in layer.cell.state_names]
    outputs, *finals = layer(x, initial_state=states)
    expected_outputs, expected_finals = construction(layer.cell, x, states)
    np.testing.assert_allclose(_numpy(outputs), _numpy(expected_outputs), rtol=1e-10, atol=1e-10)
    for state, expected in zip(finals, expected_finals, strict=True):
        np.testing.assert_allclose(_numpy(state), _numpy(expected), rtol=1e-10, atol=1e-10)


def test_layer_norm_defaults_are_those_of_addons():
    lstm, simple, gru = (
        ks.LayerNormLSTMCell(UNITS),
        ks.LayerNormSimpleRNNCell(UNITS),
        ks.LayerNormGRUCell(UNITS),
    )
    assert (lstm.norm_epsilon, simple.layernorm_epsilon, gru.norm_epsilon) == (1e-3, 1e-5, 1e-3)
    for cell in (lstm, simple, gru):
        cell.build((None, INPUT_DIM))
    named = lstm.named_weights()
    for suffix, size in (("x", 4 * UNITS), ("h", 4 * UNITS), ("c", UNITS)):
        np.testing.assert_array_equal(named[f"gamma_{suffix}"], np.ones(size))
        np.testing.assert_array_equal(named[f"beta_{suffix}"], np.zeros(size))
    np.testing.assert_array_equal(named["b_f"], np.ones(UNITS))  # unit_forget_bias
    np.testing.assert_array_equal(simple.named_weights()["gamma"], np.ones(UNITS))
    assert "beta" not in simple.named_weights()


def test_layer_norm_lstm_cell_state_is_normalised():
    """With γ = 1 and β = 0, each carried C_t has mean 0 and variance var / (var + ε)."""
    rng = np.random.default_rng(4)
    layer = _built(ks.LayerNormLSTM)
    weights = {
        name: value if name.startswith(("gamma", "beta")) else rng.normal(size=value.shape)
        for name, value in layer.cell.named_weights().items()
    }
    layer.cell.set_named_weights(weights)
    traced = ks.trace(layer, _random_sequence(rng))
    c = np.asarray(traced["c"])
    np.testing.assert_allclose(c.mean(axis=-1), 0.0, atol=1e-12)
    # var(C_t) = v / (v + ε) < 1, with v the variance before the norm.
    assert np.all(c.var(axis=-1) < 1.0) and np.all(c.var(axis=-1) > 0.5)


# ------------------------------------------------------------- LSTM variants
@pytest.mark.tensorflow_only(reason="bitwise equality needs float64 arithmetic throughout")
def test_peephole_lstm_with_zero_peepholes_is_the_lstm():
    rng = np.random.default_rng(5)
    lstm = _built(ks.LSTM)
    weights = _random_named_weights(lstm.cell, rng)
    lstm.cell.set_named_weights(weights)
    zeros = {name: np.zeros(UNITS) for name in ("p_i", "p_f", "p_o")}
    peephole = _built(ks.PeepholeLSTM, {**weights, **zeros})
    x = _random_sequence(rng, timesteps=MASK.shape[1])
    states = [rng.normal(size=(BATCH, UNITS)) for _ in range(2)]
    for mask in (None, MASK):
        for got, want in zip(
            peephole(x, initial_state=states, mask=mask),
            lstm(x, initial_state=states, mask=mask),
            strict=True,
        ):
            np.testing.assert_array_equal(_numpy(got), _numpy(want))


def test_peephole_weights_use_the_kernel_initializer():
    cell = ks.PeepholeLSTMCell(UNITS, kernel_initializer="ones")
    cell.build((None, INPUT_DIM))
    names = {v.path.split("/")[-1] for v in cell.weights}
    assert {f"{g}_gate_peephole_weights" for g in ("input", "forget", "output")} <= names
    for gate in "ifo":
        np.testing.assert_array_equal(cell.named_weights()[f"p_{gate}"], np.ones(UNITS))


def test_cifg_lstm_couples_its_gates():
    rng = np.random.default_rng(6)
    cell = ks.CIFGLSTMCell(UNITS, dtype="float64")
    cell.build((None, INPUT_DIM))
    assert cell.gate_names == ("f", "c", "o")
    assert tuple(cell.kernel.shape) == (INPUT_DIM, 3 * UNITS)
    np.testing.assert_array_equal(cell.named_weights()["b_f"], np.ones(UNITS))
    no_forget_bias = ks.CIFGLSTMCell(UNITS, unit_forget_bias=False)
    no_forget_bias.build((None, INPUT_DIM))
    np.testing.assert_array_equal(no_forget_bias.named_weights()["b_f"], np.zeros(UNITS))
    gates = cell.gates(rng.normal(size=(BATCH, INPUT_DIM)), [np.zeros((BATCH, UNITS))] * 2)
    np.testing.assert_array_equal(_numpy(gates["i"]), 1.0 - _numpy(gates["f"]))


# ---------------------------------------------------- masks in float64, 1e-10
@with_variant
@pytest.mark.parametrize("dtype", [FLOAT64])
def test_variants_with_masks_and_initial_states_match_reference(case, dtype):
    p = Problem(case, "default", dtype)
    layer = case.layer(UNITS, return_sequences=True, return_state=True, dtype=dtype)
    layer.build((BATCH, None, INPUT_DIM))
    layer.cell.set_named_weights(p.weights)
    inputs, states = p.sequence(MASK.shape[1])
    result = layer(p.feed(inputs), initial_state=[p.feed(s) for s in states], mask=MASK)
    outputs, finals = masked_expected(p, case, inputs, states, MASK, zero_output_for_mask=False)
    p.check(result[0], outputs, "masked outputs")
    assert len(result[1:]) == reference.N_STATES[p.kind]
    for k, (state, value) in enumerate(zip(result[1:], finals, strict=True)):
        p.check(state, value, f"masked final state {k}")


# ------------------------------------------------------------------ arguments
@pytest.mark.parametrize(
    "make, error",
    [
        (lambda: ks.LayerNormLSTMCell(UNITS, norm_epsilon=0.0), ValueError),
        (lambda: ks.LayerNormGRUCell(UNITS, norm_epsilon="small"), TypeError),
        (lambda: ks.LayerNormSimpleRNNCell(UNITS, layernorm_epsilon=-1e-5), ValueError),
        (lambda: ks.LayerNormSimpleRNNCell(UNITS, gamma_initializer="glorot_unicorn"), ValueError),
        (lambda: ks.LayerNormLSTMCell(UNITS, norm_beta_initializer="zeroes"), ValueError),
        (lambda: ks.CIFGLSTMCell(UNITS, unit_forget_bias="yes"), TypeError),
        (lambda: ks.PeepholeLSTMCell(UNITS, chrono_init=1), ValueError),
    ],
)
def test_variant_arguments_are_checked(make, error):
    with pytest.raises(error, match="Expected"):
        make()


def test_variant_layers_take_cell_and_rnn_arguments():
    layer = ks.LayerNormLSTM(UNITS, norm_epsilon=0.01, go_backwards=True, name="ln")
    assert layer.cell.norm_epsilon == 0.01 and layer.go_backwards
    restored = ks.LayerNormLSTM.from_config(layer.get_config())
    assert restored.cell.norm_epsilon == 0.01 and restored.go_backwards
    assert isinstance(ks.CIFGLSTM(UNITS).cell, ks.CIFGLSTMCell)
    assert isinstance(ks.PeepholeLSTM(UNITS).cell, ks.PeepholeLSTMCell)
    assert isinstance(ks.LayerNormSimpleRNN(UNITS).cell, ks.LayerNormSimpleRNNCell)
    assert isinstance(ks.LayerNormGRU(UNITS).cell, ks.LayerNormGRUCell)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize(
    "layer_class",
    [ks.LayerNormLSTM, ks.LayerNormSimpleRNN, ks.LayerNormGRU],
    ids=lambda layer_class: layer_class.__name__,
)
def test_layer_norm_under_mixed_precision_keeps_float32_statistics(layer_class, policy):
    """Half-precision products, float32 layer norms and states: close to float32."""
    tolerance = {"mixed_float16": 5e-3, "mixed_bfloat16": 3e-2}[policy]
    rng = np.random.default_rng(7)
    x = rng.normal(size=(BATCH, TIMESTEPS, INPUT_DIM)).astype("float32")
    full = layer_class(UNITS, return_sequences=True, return_state=True)
    full.build((BATCH, None, INPUT_DIM))
    weights = _random_named_weights(full.cell, rng)
    full.cell.set_named_weights(weights)
    expected = full(x)
    keras.config.set_dtype_policy(policy)
    half = layer_class(UNITS, return_sequences=True, return_state=True)
    half.build((BATCH, None, INPUT_DIM))
    half.cell.set_named_weights(weights)
    result = half(x)
    gates = half.cell.gates(x[:, 0], [np.zeros((BATCH, UNITS), "float32")] * len(result[1:]))
    assert {keras.backend.standardize_dtype(g.dtype) for g in gates.values()} == {"float32"}
    assert [keras.backend.standardize_dtype(s.dtype) for s in result[1:]] == ["float32"] * len(
        result[1:]
    )
    for got, want in zip(result, expected, strict=True):
        np.testing.assert_allclose(_numpy(ops.cast(got, "float32")), _numpy(want), atol=tolerance)


@with_variant
def test_variants_run_step_by_step_as_over_the_sequence(case):
    """The stepping core (`ModelStepper`, behind the export `step` signature)."""
    from keras_seqcells.stepping import ModelStepper

    rng = np.random.default_rng(8)
    model = keras.Sequential(
        [
            keras.Input((TIMESTEPS, INPUT_DIM)),
            case.layer(UNITS, return_sequences=True),
            keras.layers.Dense(2),
        ]
    )
    x = rng.normal(size=(BATCH, TIMESTEPS, INPUT_DIM)).astype("float32")
    expected = _numpy(model(x))
    stepper = ModelStepper(model)
    assert len(stepper.state_names) == len(case.cell().state_names)
    states = stepper.initial_state(batch_size=BATCH)
    for t in range(TIMESTEPS):
        y_t, states = stepper.step(x[:, t], states)
        np.testing.assert_allclose(_numpy(y_t), expected[:, t], rtol=1e-5, atol=1e-6)
