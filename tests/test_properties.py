"""Property-based checks of the three layers against the float64 reference.

Hypothesis draws the batch size, the sequence length, the unit and feature
counts, the weights, the inputs, the initial states, an arbitrary mask
(including rows where every step is masked) and the options (bias,
activations, GRU's candidate form, SimpleRNN's output head, `go_backwards`,
`return_sequences`); every output and final state must match
`tests/reference.py` run in float64 with Keras's masking rule (a masked step
keeps the previous output, zeros before the first step, and the previous
states).

The number of examples comes from the Hypothesis profile (`tests/conftest.py`):
a quick one by default, `HYPOTHESIS_PROFILE=ci` (or `CI` set) for the
thousand-example run.
"""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import keras_seqcells as ks
from tests import reference

ACTIVATIONS = ("tanh", "relu", "linear", "sigmoid")
RECURRENT_ACTIVATIONS = ("sigmoid", "hard_sigmoid", "tanh")
LAYERS = {"simple_rnn": ks.SimpleRNN, "lstm": ks.LSTM, "gru": ks.GRU}
ATOL = 1e-10

pytestmark = [
    pytest.mark.skipif(
        keras.backend.backend() == "jax",
        reason="Keras's JAX backend computes ops such as tanh on float64 in float32",
    ),
    # A head of one output unit is a valid edge case (its softmax is 1).
    pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1"),
]


@st.composite
def problems(draw, kind):
    """A layer configuration, weights and a batch of masked sequences."""
    options = {
        "use_bias": draw(st.booleans()),
        "activation": draw(st.sampled_from(ACTIVATIONS)),
        "go_backwards": draw(st.booleans()),
        "return_sequences": draw(st.booleans()),
    }
    if kind == "simple_rnn":
        options["output_units"] = draw(st.none() | st.integers(1, 3))
    else:
        options["recurrent_activation"] = draw(st.sampled_from(RECURRENT_ACTIVATIONS))
    if kind == "gru":
        options["reset_after"] = draw(st.booleans())
    units = draw(st.integers(1, 5))
    features = draw(st.integers(1, 4))
    batch = draw(st.integers(1, 4))
    timesteps = draw(st.integers(1, 7))
    mask = np.array(
        draw(st.lists(st.booleans(), min_size=batch * timesteps, max_size=batch * timesteps)),
        dtype=bool,
    ).reshape(batch, timesteps)
    use_mask = draw(st.booleans())
    use_initial_state = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shapes = reference.weight_shapes(
        kind, features, units, options["use_bias"], options.get("output_units")
    )
    weights = {name: 0.6 * rng.normal(size=shape) for name, shape in shapes.items()}
    inputs = rng.normal(size=(batch, timesteps, features))
    states = [
        0.5 * rng.normal(size=(batch, units)) if use_initial_state else np.zeros((batch, units))
        for _ in range(reference.N_STATES[kind])
    ]
    return {
        "kind": kind,
        "options": options,
        "units": units,
        "features": features,
        "weights": weights,
        "inputs": inputs,
        "states": states,
        "mask": mask if use_mask else None,
        "use_initial_state": use_initial_state,
    }


_LAYERS = {}


def _layer(problem):
    """One float64 layer per configuration and shape, reused across examples."""
    options = problem["options"]
    key = (problem["kind"], problem["units"], problem["features"], *sorted(options.items()))
    if key not in _LAYERS:
        layer = LAYERS[problem["kind"]](
            problem["units"], return_state=True, dtype="float64", **options
        )
        layer.build((None, None, problem["features"]))
        _LAYERS[key] = layer
    layer = _LAYERS[key]
    layer.cell.set_named_weights(problem["weights"])
    return layer


def _expected(problem):
    """The reference with Keras's masking, `go_backwards` and `return_sequences` rules."""
    kind, options = problem["kind"], problem["options"]
    step = reference.STEPS[kind]
    step_options = {
        name: options[name]
        for name in ("activation", "recurrent_activation", "reset_after")
        if name in options
    }
    weights = {name: np.asarray(value, np.float64) for name, value in problem["weights"].items()}
    inputs, mask = problem["inputs"], problem["mask"]
    batch, timesteps, _ = inputs.shape
    if mask is None:
        mask = np.ones((batch, timesteps), dtype=bool)
    if options["go_backwards"]:
        inputs, mask = inputs[:, ::-1], mask[:, ::-1]
    states = [np.asarray(s, np.float64) for s in problem["states"]]
    output_size = options.get("output_units") or problem["units"]
    output = np.zeros((batch, output_size))
    outputs = []
    for t in range(timesteps):
        new_output, new_states, _ = step(weights, inputs[:, t], states, **step_options)
        keep = mask[:, t, None]
        output = np.where(keep, new_output, output)
        states = [np.where(keep, new, old) for new, old in zip(new_states, states, strict=True)]
        outputs.append(output)
    result = np.stack(outputs, axis=1) if options["return_sequences"] else output
    return result, states


def _check(problem):
    layer = _layer(problem)
    kwargs = {}
    if problem["mask"] is not None:
        kwargs["mask"] = keras.ops.convert_to_tensor(problem["mask"])
    if problem["use_initial_state"]:
        kwargs["initial_state"] = [np.asarray(s) for s in problem["states"]]
    output, *states = layer(problem["inputs"], **kwargs)
    expected_output, expected_states = _expected(problem)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(output), expected_output, rtol=ATOL, atol=ATOL
    )
    assert len(states) == len(expected_states)
    for state, expected in zip(states, expected_states, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(state), expected, rtol=ATOL, atol=ATOL
        )


@given(problems("simple_rnn"))
def test_simple_rnn_matches_reference(problem):
    _check(problem)


@given(problems("lstm"))
def test_lstm_matches_reference(problem):
    _check(problem)


@given(problems("gru"))
def test_gru_matches_reference(problem):
    _check(problem)
