"""Bad inputs get a ValueError or TypeError naming the argument, the value and the expectation."""

import re

import keras
import numpy as np
import pytest

import keras_seqcells as ks

BATCH, TIMESTEPS, FEATURES, UNITS = 2, 5, 3, 4

CLASSES = [ks.SimpleRNNCell, ks.LSTMCell, ks.GRUCell, ks.SimpleRNN, ks.LSTM, ks.GRU]
CLASS_IDS = [cls.__name__ for cls in CLASSES]


def _zeros(*shape):
    return np.zeros(shape, dtype="float32")


def _received(name, value):
    return rf"Received: {name}={re.escape(repr(value))}$"


def _state_count(cell):
    size = cell.state_size
    return len(size) if isinstance(size, (list, tuple)) else 1


def _shapes(shapes):
    return re.escape(str([tuple(s) for s in shapes]))


@pytest.mark.parametrize("cls", CLASSES, ids=CLASS_IDS)
def test_constructor_arguments_are_checked(cls):
    _check_units(cls)
    _check_dropout_rates(cls)
    _check_seed(cls)


def _check_units(cls):
    for value in (0, -1):
        with pytest.raises(
            ValueError,
            match=r"Expected `units` to be a positive integer\. " + _received("units", value),
        ):
            cls(value)
    for value in (2.5, True, "4"):
        with pytest.raises(
            TypeError, match=r"Expected `units` to be an integer\. " + _received("units", value)
        ):
            cls(value)
    assert cls(np.int64(UNITS)).units == UNITS


def _check_dropout_rates(cls):
    for argument in ("dropout", "recurrent_dropout"):
        expected = rf"Expected `{argument}` to be a float in \[0, 1\)\. "
        for value in (-0.1, 1.0, 1.5):
            with pytest.raises(ValueError, match=expected + _received(argument, value)):
                cls(UNITS, **{argument: value})
        for value in ("0.5", None, True):
            with pytest.raises(TypeError, match=expected + _received(argument, value)):
                cls(UNITS, **{argument: value})
        assert getattr(cls(UNITS, **{argument: 0}), argument) == 0.0
        assert getattr(cls(UNITS, **{argument: 0.99}), argument) == 0.99


def _check_seed(cls):
    for value in ("7", 1.5, True):
        with pytest.raises(
            TypeError, match=r"`seed`.*integer or None\. " + _received("seed", value)
        ):
            cls(UNITS, seed=value)


def test_output_units_must_be_a_positive_integer():
    for cls in (ks.SimpleRNNCell, ks.SimpleRNN):
        for value in (0, -2):
            with pytest.raises(
                ValueError,
                match=r"Expected `output_units` to be a positive integer\. "
                + _received("output_units", value),
            ):
                cls(UNITS, output_units=value)
        for value in (1.5, "3"):
            with pytest.raises(
                TypeError,
                match=r"Expected `output_units` to be an integer\. "
                + _received("output_units", value),
            ):
                cls(UNITS, output_units=value)


def test_use_cudnn_must_be_auto_true_or_false():
    for cls in (ks.LSTM, ks.GRU):
        with pytest.raises(
            ValueError,
            match=r"Expected `use_cudnn` to be one of \{'auto', True, False\}\. "
            + _received("use_cudnn", "yes"),
        ):
            cls(UNITS, use_cudnn="yes")


def test_layer_rejects_bad_inputs(case):
    _check_layer_input_rank(case.layer(UNITS))
    _check_layer_initial_state(case.layer(UNITS))


def _check_layer_input_rank(layer):
    for shape in ((BATCH, FEATURES), (BATCH, TIMESTEPS, FEATURES, 1)):
        with pytest.raises(
            ValueError,
            match=r"Expected `sequences` of rank 3 \(batch, timesteps, features\).*"
            + re.escape(f"Received: sequences.shape={shape}"),
        ):
            layer(_zeros(*shape))
    layer(_zeros(BATCH, TIMESTEPS, FEATURES))
    with pytest.raises(ValueError, match=re.escape(f"sequences.shape={(BATCH, FEATURES)}")):
        layer(_zeros(BATCH, FEATURES))


def _bad_state_lists(count):
    """Lists of states with one too few, one too many, a wrong size or a wrong rank."""
    good = [_zeros(BATCH, UNITS) for _ in range(count)]
    return [
        good[:-1],
        [*good, _zeros(BATCH, UNITS)],
        [_zeros(BATCH, UNITS + 1) for _ in range(count)],
        [_zeros(BATCH, UNITS, 1) for _ in range(count)],
    ]


def _check_layer_initial_state(layer):
    count = _state_count(layer.cell)
    for states in _bad_state_lists(count):
        with pytest.raises(
            ValueError,
            match=rf"Expected `initial_state` of \w+ to be {count} tensor\(s\) of shapes .*"
            rf"Received: initial_state shapes={_shapes(s.shape for s in states)}",
        ):
            layer(_zeros(BATCH, TIMESTEPS, FEATURES), initial_state=states)


def test_layer_rejects_an_initial_state_of_the_wrong_batch_size(case):
    layer = case.layer(UNITS)
    count = _state_count(layer.cell)
    states = [_zeros(BATCH + 1, UNITS) for _ in range(count)]
    with pytest.raises(ValueError, match=r"initial_state.*Received"):
        layer(_zeros(BATCH, TIMESTEPS, FEATURES), initial_state=states)


def test_cell_rejects_bad_inputs(case):
    _check_cell_input_rank(case.cell(UNITS))
    _check_cell_states(case.cell(UNITS))


def _check_cell_input_rank(cell):
    states = cell.get_initial_state(BATCH)
    sequences = _zeros(BATCH, TIMESTEPS, FEATURES)
    with pytest.raises(
        ValueError,
        match=r"input of shape \(batch, input_dim\).*"
        + re.escape(f"Received: input_shape={(BATCH, TIMESTEPS, FEATURES)}"),
    ):
        cell(sequences, states)
    cell(sequences[:, 0], states)
    step_error = r"step input of rank 2 \(batch, input_dim\).*" + re.escape(
        f"Received: inputs.shape={(BATCH, TIMESTEPS, FEATURES)}"
    )
    with pytest.raises(ValueError, match=step_error):
        cell(sequences, states)
    with pytest.raises(ValueError, match=step_error):
        cell.gates(sequences, states)


def _check_cell_states(cell):
    count = _state_count(cell)
    x_t = _zeros(BATCH, FEATURES)
    cell(x_t, cell.get_initial_state(BATCH))
    for states in _bad_state_lists(count):
        expected = (
            rf"Expected `states` of {type(cell).__name__} to be {count} tensor\(s\) of shapes .*"
            rf"Received: states shapes={_shapes(s.shape for s in states)}"
        )
        with pytest.raises(ValueError, match=expected):
            cell(x_t, states)
        with pytest.raises(ValueError, match=expected):
            cell.gates(x_t, states)


def _built_cell(case):
    cell = case.cell(UNITS)
    cell.build((None, FEATURES))
    return cell


def test_named_weights_are_checked(case):
    _check_unbuilt(case.cell(UNITS))
    _check_bad_names_shapes_and_types(_built_cell(case))
    _check_failed_update_changes_nothing(_built_cell(case))


def _check_unbuilt(cell):
    for method, call in (
        ("named_weights", cell.named_weights),
        ("set_named_weights", lambda: cell.set_named_weights({})),
    ):
        with pytest.raises(
            ValueError,
            match=rf"Expected a built {type(cell).__name__} before calling `{method}\(\)`.*"
            r"Received: an unbuilt cell",
        ):
            call()


def _check_bad_names_shapes_and_types(cell):
    before = cell.named_weights()
    names = sorted(before)

    with pytest.raises(
        ValueError,
        match=re.escape(f"Expected weight names among {names}. Received unknown name(s): ['W_xq']"),
    ):
        cell.set_named_weights({"W_xq": np.zeros((UNITS, FEATURES))})

    for name, value in before.items():
        wrong = np.zeros((value.shape[0] + 1, *value.shape[1:]))
        with pytest.raises(
            ValueError,
            match=re.escape(f"Expected `{name}` of shape {value.shape}. Received: ")
            + re.escape(f"{name}.shape={wrong.shape}"),
        ):
            cell.set_named_weights({name: wrong})

    for weights in ([np.zeros((UNITS, FEATURES))], "W_xh", None):
        with pytest.raises(
            TypeError,
            match=r"Expected `weights` to be a dict of name -> array\. "
            rf"Received: weights of type {type(weights).__name__}$",
        ):
            cell.set_named_weights(weights)


def _check_failed_update_changes_nothing(cell):
    before = cell.named_weights()
    first, second = sorted(before)[:2]
    update = {first: before[first] + 1.0, second: np.zeros((7, 7))}
    with pytest.raises(ValueError, match=re.escape(f"`{second}`")):
        cell.set_named_weights(update)
    after = cell.named_weights()
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value)


def test_trace_rejects_other_layers_and_inputs_of_the_wrong_rank():
    expected_layer = r"Expected `layer` to be a keras\.layers\.RNN on a keras_seqcells cell\. "
    inputs = _zeros(BATCH, TIMESTEPS, FEATURES)
    for layer in (
        keras.layers.Dense(UNITS),
        keras.layers.LSTM(UNITS),
        keras.layers.RNN(keras.layers.GRUCell(UNITS)),
    ):
        with pytest.raises(TypeError, match=expected_layer + r"Received: layer=<"):
            ks.trace(layer, inputs)

    layer = ks.LSTM(UNITS)
    for shape in ((BATCH, FEATURES), (BATCH, TIMESTEPS, FEATURES, 1)):
        with pytest.raises(
            ValueError,
            match=r"Expected `inputs` of rank 3 \(batch, timesteps, input_dim\)\. "
            + re.escape(f"Received: inputs.shape={shape}"),
        ):
            ks.trace(layer, _zeros(*shape))
