"""Analytic gradients of the layers against central finite differences, in float64."""

import numpy as np
import pytest
import tensorflow as tf

import keras_seqcells as ks
from tests import reference
from tests.cases import CASE_IDS, CASES

BATCH, TIMESTEPS, INPUT_DIM, UNITS = 2, 5, 3, 4
EPS = 1e-6
RTOL, ATOL = 1e-6, 1e-8

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


def central_differences(loss, value, set_value):
    """d loss / d value, entry by entry; `set_value(array)` installs a perturbed copy."""
    grad = np.zeros_like(value)
    for index in np.ndindex(value.shape):
        shifted = value.copy()
        shifted[index] = value[index] + EPS
        set_value(shifted)
        plus = float(loss())
        shifted[index] = value[index] - EPS
        set_value(shifted)
        minus = float(loss())
        grad[index] = (plus - minus) / (2 * EPS)
    set_value(value)
    return grad


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradients_match_finite_differences(case):
    kind = KINDS[case.cell_class]
    rng = np.random.default_rng(7)
    layer = case.layer(UNITS, return_sequences=True, return_state=True, dtype="float64")
    layer.build((BATCH, TIMESTEPS, INPUT_DIM))
    shapes = reference.weight_shapes(kind, INPUT_DIM, UNITS, output_units=case.output_units)
    layer.cell.set_named_weights({n: 0.5 * rng.normal(size=s) for n, s in shapes.items()})

    x0 = rng.normal(size=(BATCH, TIMESTEPS, INPUT_DIM))
    states0 = [0.5 * rng.normal(size=(BATCH, UNITS)) for _ in range(reference.N_STATES[kind])]
    output_size = case.output_units or UNITS
    out_weights = tf.constant(rng.normal(size=(BATCH, TIMESTEPS, output_size)))
    state_weights = [tf.constant(rng.normal(size=(BATCH, UNITS))) for _ in states0]

    def loss_of(x, states):
        outputs, *final_states = layer(x, initial_state=states)
        total = tf.reduce_sum(outputs * out_weights)
        for state, weight in zip(final_states, state_weights, strict=True):
            total += tf.reduce_sum(state * weight)
        return total

    x = tf.constant(x0)
    states = [tf.constant(s) for s in states0]
    variables = layer.trainable_weights
    assert len(variables) == len(layer.weights) > 0
    with tf.GradientTape() as tape:
        tape.watch([x, *states])
        loss = loss_of(x, states)
    analytic = tape.gradient(loss, [x, *states, *variables])
    assert all(g is not None for g in analytic)

    compiled = tf.function(loss_of)
    np.testing.assert_allclose(float(compiled(x, states)), float(loss), rtol=1e-12)

    probe = {"x": x0, "states": states0}

    def loss_at_probe():
        return compiled(tf.constant(probe["x"]), [tf.constant(s) for s in probe["states"]])

    def set_x(value):
        probe["x"] = value

    def set_state(k):
        def set_value(value):
            probe["states"] = [value if j == k else s for j, s in enumerate(states0)]

        return set_value

    targets = [("inputs", x0, set_x)]
    targets += [(f"initial state {k}", s, set_state(k)) for k, s in enumerate(states0)]
    targets += [(v.path, np.array(v.numpy()), v.assign) for v in variables]
    for (name, value, set_value), grad in zip(targets, analytic, strict=True):
        numeric = central_differences(loss_at_probe, value, set_value)
        np.testing.assert_allclose(
            np.asarray(grad), numeric, rtol=RTOL, atol=ATOL, err_msg=f"d loss / d {name}"
        )
