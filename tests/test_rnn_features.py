"""The features of `keras.layers.RNN` work with the keras_seqcells cells and layers.

Every feature is checked for every case of `tests.cases.CASES`, both on the
package's layers (`case.layer(...)`) and on `keras.layers.RNN(case.cell(...))`.
The main reference is `step_by_step`, which calls the cell one step at a time
in plain Python with Keras's masking rule, so the checks target the layer
machinery (loops, masks, states, dropout masks) rather than the equations.
"""

import keras
import numpy as np
import pytest

BATCH, TIME, FEATURES, UNITS = 3, 5, 3, 4
RTOL, ATOL = 1e-5, 1e-5
# Keyword arguments that belong to the cell; the others go to the RNN layer.
CELL_KWARGS = ("dropout", "recurrent_dropout", "seed")
# A mask with holes: sample 0 skips middle steps, sample 1 skips the first
# step, sample 2 skips the last two steps.
HOLES_MASK = np.array(
    [
        [True, False, True, False, True],
        [False, True, True, False, True],
        [True, True, True, False, False],
    ]
)


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(1234)


@keras.saving.register_keras_serializable(package="tests")
class _SkipMaskedLoopOnJax(keras.layers.RNN):
    """`keras.layers.RNN` that skips the test where Keras's JAX loop cannot run the cell."""

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if mask is not None and not self.unroll and not self.zero_output_for_mask:
            pytest.skip(
                "keras.layers.RNN's JAX loop repeats the first state as a masked step's "
                "output, which is not the output of a cell with a head (the package's "
                "layers carry the output themselves)"
            )
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)


@pytest.fixture(params=["layer", "rnn_cell"])
def make_rnn(request, case):
    """Builds an RNN for the case: the package's layer or `keras.layers.RNN(cell)`."""

    def make(**kwargs):
        if request.param == "layer":
            return case.layer(UNITS, **kwargs)
        cell_kwargs = {key: kwargs.pop(key) for key in CELL_KWARGS if key in kwargs}
        cell = case.cell(UNITS, **cell_kwargs)
        if keras.backend.backend() == "jax" and not cell.output_is_first_state:
            return _SkipMaskedLoopOnJax(cell, **kwargs)
        return keras.layers.RNN(cell, **kwargs)

    return make


# ----------------------------------------------------------------- helpers
def random_inputs(batch=BATCH, time=TIME, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, time, FEATURES)).astype("float32")


def num_states(cell):
    size = cell.state_size
    return len(size) if isinstance(size, (list, tuple)) else 1


def random_states(cell, batch=BATCH, seed=1):
    rng = np.random.default_rng(seed)
    return [
        rng.uniform(-0.9, 0.9, size=(batch, UNITS)).astype("float32")
        for _ in range(num_states(cell))
    ]


def randomize_weights(layer, seed=0):
    """Replaces every weight (biases and output head included) with random values."""
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()]
    )


def build(layer, x, seed=0):
    """Builds `layer` on `x` and gives it random weights; returns the layer."""
    layer(x)
    randomize_weights(layer, seed)
    return layer


def build_like(layer, reference, x):
    """Builds `layer` on `x` with the weights of `reference`; returns the layer."""
    layer(x)
    layer.set_weights(reference.get_weights())
    return layer


def as_numpy(values):
    if isinstance(values, (list, tuple)):
        return [as_numpy(v) for v in values]
    return np.asarray(keras.ops.convert_to_numpy(values))


def assert_close(actual, expected):
    actual, expected = as_numpy(actual), as_numpy(expected)
    if isinstance(expected, list):
        assert isinstance(actual, list)
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_close(a, e)
    else:
        assert actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


def assert_differ(a, b):
    assert not np.allclose(as_numpy(a), as_numpy(b), rtol=RTOL, atol=ATOL)


def step_by_step(cell, x, initial_state=None, mask=None):
    """Runs `cell` one step at a time over `x` (batch, time, features).

    A masked step keeps the previous output (zeros before the first step) and
    the previous states, as `keras.layers.RNN` does with the default
    `zero_output_for_mask=False`. Returns the per-step outputs and the final
    states as NumPy arrays.
    """
    batch, time, _ = x.shape
    if initial_state is None:
        initial_state = cell.get_initial_state(batch)
    states = as_numpy(list(initial_state))
    output = np.zeros((batch, cell.output_size), dtype="float32")
    outputs = []
    for t in range(time):
        new_output, new_states = cell(x[:, t, :], states)
        keep = np.ones((batch, 1), bool) if mask is None else mask[:, t, None]
        output = np.where(keep, as_numpy(new_output), output)
        states = [
            np.where(keep, new, old) for new, old in zip(as_numpy(new_states), states, strict=True)
        ]
        outputs.append(output)
    return np.stack(outputs, axis=1), states


def numpy_simple_rnn_with_head(weights, x):
    """The specification's SimpleRNN with output head; returns the last h_t and y_t."""
    h = np.zeros((x.shape[0], weights["W_hh"].shape[0]), dtype="float64")
    for t in range(x.shape[1]):
        h = np.tanh(h @ weights["W_hh"].T + x[:, t] @ weights["W_xh"].T + weights["b_h"])
    logits = h @ weights["W_hy"].T + weights["b_y"]
    y = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return h.astype("float32"), (y / y.sum(axis=-1, keepdims=True)).astype("float32")


def run_with_states(layer, x, **call_kwargs):
    """Calls a `return_state=True` layer; returns (output, list of states)."""
    output, *states = layer(x, **call_kwargs)
    return output, states


# ------------------------------------------------- return_sequences / state
def test_return_sequences_and_return_state(case, make_rnn):
    x = random_inputs()
    last = build(make_rnn(), x)
    sequence = build_like(make_rnn(return_sequences=True, return_state=True), last, x)
    last_with_states = build_like(make_rnn(return_state=True), last, x)
    output, states = run_with_states(sequence, x)
    reference_outputs, reference_states = step_by_step(last.cell, x)
    assert tuple(output.shape) == (BATCH, TIME, case.output_units or UNITS)
    assert_close(output, reference_outputs)
    assert_close(output[:, -1], last(x))
    assert len(states) == len(case.cell(UNITS).state_names)
    for state in states:
        assert tuple(state.shape) == (BATCH, UNITS)
    assert_close(states, reference_states)
    assert_close(run_with_states(last_with_states, x), [output[:, -1], states])
    if case.output_units is None:
        # Without an output head the first state is the output h_t.
        assert_close(states[0], output[:, -1])
    else:
        # With the head the state is h_t of the equations and the output is y_t.
        hidden, probabilities = numpy_simple_rnn_with_head(last.cell.named_weights(), x)
        assert_close(states, [hidden])
        assert_close(output[:, -1], probabilities)


# ------------------------------------------------------------- go_backwards
@pytest.mark.parametrize("unroll", [False, True])
def test_go_backwards_equals_forward_on_reversed_input(make_rnn, unroll, request):
    if unroll and keras.backend.backend() == "torch" and "rnn_cell" in request.node.callspec.id:
        pytest.skip(
            "keras.layers.RNN's unrolled torch loop fails on go_backwards with a mask "
            "(it flips a tuple); the package's layers reverse the steps themselves"
        )
    x = random_inputs()
    reversed_mask = keras.ops.convert_to_tensor(HOLES_MASK[:, ::-1].copy())
    mask = keras.ops.convert_to_tensor(HOLES_MASK)
    kwargs = {"return_sequences": True, "return_state": True}
    forward = build(make_rnn(**kwargs), x)
    backward = build_like(make_rnn(go_backwards=True, unroll=unroll, **kwargs), forward, x)
    assert_close(run_with_states(backward, x), run_with_states(forward, x[:, ::-1]))
    assert_close(
        run_with_states(backward, x, mask=mask),
        run_with_states(forward, x[:, ::-1], mask=reversed_mask),
    )
    assert_differ(backward(x)[0], forward(x)[0])


# ----------------------------------------------------------------- stateful
def assert_zero_states(layer):
    for state in layer.states:
        np.testing.assert_array_equal(as_numpy(state), 0.0)


def test_stateful_halves_equal_whole_and_reset(make_rnn):
    x = random_inputs()
    split = TIME // 2
    whole = build(make_rnn(return_sequences=True, return_state=True), x)
    stateful = build_like(make_rnn(return_sequences=True, stateful=True), whole, x[:, :split])
    stateful.reset_states()
    assert_zero_states(stateful)
    first = as_numpy(stateful(x[:, :split]))
    second = as_numpy(stateful(x[:, split:]))
    whole_output, whole_states = run_with_states(whole, x)
    assert_close(np.concatenate([first, second], axis=1), whole_output)
    assert_close(list(stateful.states), whole_states)
    for reset in (stateful.reset_states, stateful.reset_state):
        reset()
        assert_zero_states(stateful)
        assert_close(stateful(x[:, :split]), first)
    assert_differ(stateful(x[:, :split]), first)


def test_stateful_rejects_another_batch_size(make_rnn):
    x = random_inputs()
    stateful = build(make_rnn(stateful=True), x)
    with pytest.raises(ValueError, match="batch size"):
        stateful(x[:1])


# ------------------------------------------------------------------- unroll
def test_unroll_equals_loop(make_rnn):
    x = random_inputs()
    mask = keras.ops.convert_to_tensor(HOLES_MASK)
    looped = build(make_rnn(return_sequences=True, return_state=True), x)
    unrolled = build_like(
        make_rnn(return_sequences=True, return_state=True, unroll=True), looped, x
    )
    assert_close(unrolled(x), looped(x))
    assert_close(unrolled(x, mask=mask), looped(x, mask=mask))


# ------------------------------------------------------------ initial_state
def test_initial_state_is_used(make_rnn):
    x = random_inputs()
    layer = build(make_rnn(return_sequences=True, return_state=True), x)
    initial_state = random_states(layer.cell)
    output, states = run_with_states(layer, x, initial_state=initial_state)
    zero_output, _ = run_with_states(layer, x)
    reference_outputs, reference_states = step_by_step(layer.cell, x, initial_state)
    assert_differ(output, zero_output)
    assert_close(output, reference_outputs)
    assert_close(states, reference_states)


# ------------------------------------------------------------------ masking
def right_padded(x, lengths, pad_value):
    padded = x.copy()
    for i, length in enumerate(lengths):
        padded[i, length:] = pad_value
    return padded


def assert_matches_unpadded(layer, x, lengths, output, states):
    """Each padded row of a sequence output and states equals the unpadded run."""
    output, states = as_numpy(output), as_numpy(states)
    for i, length in enumerate(lengths):
        short_output, short_states = run_with_states(layer, x[i : i + 1, :length])
        short_output = as_numpy(short_output)
        assert_close(output[i : i + 1, :length], short_output)
        # After the end of the sequence the output stays the last real one.
        for t in range(length, TIME):
            assert_close(output[i : i + 1, t], short_output[:, -1])
        assert_close([s[i : i + 1] for s in states], short_states)


def test_right_padding_equals_shorter_sequence(make_rnn):
    lengths = [TIME, 3, 1]
    x = random_inputs()
    layer = build(make_rnn(return_sequences=True, return_state=True), x)

    zero_padded = right_padded(x, lengths, pad_value=0.0)
    output, states = run_with_states(layer, keras.layers.Masking(mask_value=0.0)(zero_padded))
    assert_matches_unpadded(layer, x, lengths, output, states)

    mask = np.arange(TIME)[None, :] < np.array(lengths)[:, None]
    garbage_padded = right_padded(x, lengths, pad_value=7.0)
    output, states = run_with_states(layer, garbage_padded, mask=keras.ops.convert_to_tensor(mask))
    assert_matches_unpadded(layer, x, lengths, output, states)


def test_mask_with_holes_follows_keras_definition(make_rnn):
    x = random_inputs()
    layer = build(make_rnn(return_sequences=True, return_state=True), x)
    output, states = run_with_states(layer, x, mask=keras.ops.convert_to_tensor(HOLES_MASK))
    output, states = as_numpy(output), as_numpy(states)
    reference_outputs, reference_states = step_by_step(layer.cell, x, mask=HOLES_MASK)
    assert_close(output, reference_outputs)
    assert_close(states, reference_states)
    for i in range(BATCH):
        kept = HOLES_MASK[i]
        # The final state is that of running only the unmasked steps.
        _, kept_states = run_with_states(layer, x[i : i + 1, kept])
        assert_close([s[i : i + 1] for s in states], kept_states)
        # A masked step repeats the previous output (zeros before the first).
        for t in np.flatnonzero(~kept):
            previous = output[i, t - 1] if t > 0 else np.zeros_like(output[i, t])
            assert_close(output[i, t], previous)


def test_masked_step_carries_state_unchanged(make_rnn):
    x = random_inputs()
    layer = build(make_rnn(return_state=True), x)
    mask = keras.ops.convert_to_tensor(HOLES_MASK)
    zero_states = [np.zeros((BATCH, UNITS), "float32")] * num_states(layer.cell)
    states_after = [zero_states] + [
        as_numpy(layer(x[:, : t + 1], mask=mask[:, : t + 1])[1:]) for t in range(TIME)
    ]
    for t in range(TIME):
        masked = ~HOLES_MASK[:, t]
        before, after = states_after[t], states_after[t + 1]
        assert_close([s[masked] for s in after], [s[masked] for s in before])
        if not masked.all():
            assert_differ([s[~masked] for s in after], [s[~masked] for s in before])


# ------------------------------------------------------------ Bidirectional
def test_bidirectional_equals_forward_and_backward_layers(make_rnn):
    x = random_inputs()
    mask = keras.ops.convert_to_tensor(HOLES_MASK)
    # Bidirectional sets `zero_output_for_mask=return_sequences` on both halves.
    kwargs = {"return_sequences": True, "return_state": True, "zero_output_for_mask": True}
    bidirectional = build(keras.layers.Bidirectional(make_rnn(**kwargs)), x)
    forward = build_like(make_rnn(**kwargs), bidirectional.forward_layer, x)
    backward = build_like(make_rnn(go_backwards=True, **kwargs), bidirectional.backward_layer, x)
    assert type(bidirectional.forward_layer) is type(forward)
    assert bidirectional.backward_layer.go_backwards
    for call_kwargs in ({}, {"mask": mask}):
        output, *states = bidirectional(x, **call_kwargs)
        forward_output, forward_states = run_with_states(forward, x, **call_kwargs)
        backward_output, backward_states = run_with_states(backward, x, **call_kwargs)
        expected = np.concatenate(
            [as_numpy(forward_output), as_numpy(backward_output)[:, ::-1]], axis=-1
        )
        assert tuple(output.shape) == (BATCH, TIME, 2 * forward.cell.output_size)
        assert_close(output, expected)
        assert_close(list(states), forward_states + backward_states)
        assert_differ(forward_output, backward_output)


# --------------------------------------------------------- stacked cells
def layer_with_cell_weights(layer, cell, x):
    """Builds `layer` on `x` with the weights of `cell`; returns the layer."""
    layer(x)
    layer.cell.set_weights(cell.get_weights())
    return layer


def test_stacked_cells_equal_stacked_layers(case):
    x = random_inputs()
    kwargs = {"return_sequences": True, "return_state": True}
    cell_list = build(keras.layers.RNN([case.cell(UNITS), case.cell(UNITS)], **kwargs), x)
    stacked_cells = keras.layers.StackedRNNCells([case.cell(UNITS), case.cell(UNITS)])
    stacked_cells = build_like(keras.layers.RNN(stacked_cells, **kwargs), cell_list, x)
    lower_cell, upper_cell = cell_list.cell.cells
    lower = layer_with_cell_weights(case.layer(UNITS, **kwargs), lower_cell, x)
    lower_output, lower_states = run_with_states(lower, x)
    upper = layer_with_cell_weights(case.layer(UNITS, **kwargs), upper_cell, lower_output)
    upper_output, upper_states = run_with_states(upper, lower_output)
    for stacked in (cell_list, stacked_cells):
        output, *states = stacked(x)
        assert_close(output, upper_output)
        assert len(states) == 2
        assert_close([list(states[0]), list(states[1])], [lower_states, upper_states])


# ------------------------------------------------------------------ dropout
@pytest.mark.parametrize("rate_name", ["dropout", "recurrent_dropout"])
def test_dropout_only_in_training_and_seeded(make_rnn, rate_name):
    x = random_inputs()
    rates = {rate_name: 0.5}
    layer = build(make_rnn(return_sequences=True, seed=7, **rates), x)
    same_seed = build_like(make_rnn(return_sequences=True, seed=7, **rates), layer, x)
    plain = build_like(make_rnn(return_sequences=True), layer, x)

    training = as_numpy(layer(x, training=True))
    assert_close(same_seed(x, training=True), training)

    inference = as_numpy(layer(x))
    assert_close(layer(x, training=False), inference)
    assert_close(inference, plain(x))
    assert_differ(training, inference)


# ------------------------------------------------------------------- models
def regression_data(batch=8, seed=0):
    """Right-padded sequences (zeros after each length) and a smooth target."""
    lengths = np.resize(np.arange(2, TIME + 1), batch)
    x = right_padded(random_inputs(batch=batch, seed=seed), lengths, pad_value=0.0)
    y = np.tanh(x.sum(axis=(1, 2)))[:, None].astype("float32")
    return x, y


def sequential_model(case):
    rnn = case.layer(UNITS, dropout=0.1, recurrent_dropout=0.1, seed=3)
    return keras.Sequential([keras.Input((TIME, FEATURES)), rnn, keras.layers.Dense(1)])


def functional_model(case):
    inputs = keras.Input((TIME, FEATURES))
    masked = keras.layers.Masking(mask_value=0.0)(inputs)
    rnn = case.layer(UNITS, return_state=True, dropout=0.1, recurrent_dropout=0.1, seed=3)
    output, *states = rnn(masked)
    features = keras.layers.Concatenate()([output, *states])
    return keras.Model(inputs, keras.layers.Dense(1)(features))


def fit_losses(model, x, y, epochs=5, **compile_kwargs):
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", **compile_kwargs)
    history = model.fit(x, y, batch_size=4, epochs=epochs, shuffle=False, verbose=0)
    return history.history["loss"]


@pytest.mark.parametrize(
    "build_model",
    [pytest.param(sequential_model, marks=pytest.mark.slow), functional_model],
)
def test_model_fit_and_predict(case, build_model):
    x, y = regression_data()
    model = build_model(case)
    losses = fit_losses(model, x, y)
    assert np.all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    predictions = model.predict(x, verbose=0)
    assert predictions.shape == (len(x), 1)
    assert_close(predictions, model(x))


# ------------------------------------------------------- tf.function / XLA
@pytest.mark.tensorflow_only(reason="tf.function traces TensorFlow tensors only")
def test_tf_function_equals_eager(make_rnn):
    import tensorflow as tf

    x = random_inputs()
    mask = keras.ops.convert_to_tensor(HOLES_MASK)
    layer = build(make_rnn(return_sequences=True, return_state=True), x)

    @tf.function
    def traced(inputs, mask):
        return layer(inputs, mask=mask)

    assert_close(traced(x, mask), layer(x, mask=mask))
    assert_close(traced(x, tf.ones((BATCH, TIME), bool)), layer(x))


@pytest.mark.slow
def test_jit_compiled_model_matches_plain_model(case):
    x, y = regression_data()
    jitted = sequential_model(case)
    losses = fit_losses(jitted, x, y, epochs=2, jit_compile=True)
    assert jitted.jit_compile is True
    assert np.all(np.isfinite(losses))
    plain = sequential_model(case)
    plain.compile(loss="mse", jit_compile=False)
    plain.set_weights(jitted.get_weights())
    assert_close(jitted.predict(x, verbose=0), plain.predict(x, verbose=0))
