"""Bad inputs get a ValueError or TypeError naming the argument, the value and the expectation."""

import inspect
import re

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from keras_seqcells import _checks
from keras_seqcells.tasks import TrainSettings

BATCH, TIMESTEPS, FEATURES, UNITS = 2, 5, 3, 4

CLASSES = [ks.SimpleRNNCell, ks.LSTMCell, ks.GRUCell, ks.SimpleRNN, ks.LSTM, ks.GRU]
CLASSES += [
    ks.LayerNormLSTMCell,
    ks.LayerNormSimpleRNNCell,
    ks.LayerNormGRUCell,
    ks.PeepholeLSTMCell,
    ks.CIFGLSTMCell,
    ks.LayerNormLSTM,
    ks.LayerNormSimpleRNN,
    ks.LayerNormGRU,
    ks.PeepholeLSTM,
    ks.CIFGLSTM,
]
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


# --------------------------------------------- every constructor argument
# A bad value for each constructor argument of the public classes, the error
# it must raise and the start of the expected message. The coverage test
# below fails for any argument that a class gains without a row here.
_FLAG = (TypeError, "to be a boolean", "yes")
BAD_ARGUMENTS = {
    "units": (TypeError, "to be an integer", "4"),
    "output_units": (ValueError, "to be a positive integer", 0),
    "activation": (ValueError, "to be a Keras activation", "swishy"),
    "recurrent_activation": (ValueError, "to be a Keras activation", 3),
    "use_bias": _FLAG,
    "unit_forget_bias": (TypeError, "to be a boolean", 1),
    "reset_after": (TypeError, "to be a boolean", "False"),
    "kernel_initializer": (ValueError, "to be a Keras initializer", "glorot_unicorn"),
    "recurrent_initializer": (ValueError, "to be a Keras initializer", 0.5),
    "bias_initializer": (ValueError, "to be a Keras initializer", {"class_name": "Nope"}),
    "kernel_regularizer": (ValueError, "to be a Keras regularizer", "l3"),
    "recurrent_regularizer": (ValueError, "to be a Keras regularizer", 0.01),
    "bias_regularizer": (ValueError, "to be a Keras regularizer", ["l2"]),
    "activity_regularizer": (ValueError, "to be a Keras regularizer", "sparse"),
    "kernel_constraint": (ValueError, "to be a Keras constraint", "positive"),
    "recurrent_constraint": (ValueError, "to be a Keras constraint", 1.0),
    "bias_constraint": (ValueError, "to be a Keras constraint", "max_norm(3)"),
    "dropout": (ValueError, "to be a float in [0, 1)", 1.0),
    "recurrent_dropout": (TypeError, "to be a float in [0, 1)", "0.1"),
    "seed": (TypeError, "to be an integer or None", 1.5),
    "chrono_init": (ValueError, "to be a finite number above 2", 2),
    "return_sequences": _FLAG,
    "return_state": (TypeError, "to be a boolean", None),
    "go_backwards": (TypeError, "to be a boolean", 0),
    "stateful": _FLAG,
    "unroll": (TypeError, "to be a boolean", "no"),
    "use_cudnn": (ValueError, "to be one of {'auto', True, False}", 1),
    "log_dir": (TypeError, "to be a path (a str or os.PathLike)", 3),
    "every_n_epochs": (ValueError, "to be a positive integer", 0),
    "cell": (ValueError, f"to be one of {sorted(ks.layers.CELL_LAYERS)}", "rnn"),
    "epochs": (ValueError, "to be a positive integer", 0),
    "batch_size": (TypeError, "to be an integer", 8.0),
    "patience": (ValueError, "to be a positive integer", -1),
    "learning_rate": (TypeError, "to be a number", "0.01"),
    "clipnorm": (ValueError, "to be a positive number", 0.0),
    "clipvalue": (TypeError, "to be a number", True),
    "output_dir": (ValueError, "to be a non-empty path", " "),
    "verbose": (ValueError, "to be one of {0, 1, 2}", 3),
    "dtype_policy": (
        ValueError,
        "to be one of {'float32', 'mixed_bfloat16', 'mixed_float16'}",
        "bfloat16",
    ),
    "adaptable": (ValueError, "to name settings of", ("epoch",)),
    "norm_gamma_initializer": (ValueError, "to be a Keras initializer", "onez"),
    "norm_beta_initializer": (ValueError, "to be a Keras initializer", 1),
    "norm_epsilon": (ValueError, "to be a positive float", 0.0),
    "layernorm_epsilon": (TypeError, "to be a positive float", "1e-5"),
    "gamma_initializer": (ValueError, "to be a Keras initializer", "unit"),
    "gamma_regularizer": (ValueError, "to be a Keras regularizer", "l3"),
    "gamma_constraint": (ValueError, "to be a Keras constraint", "positive"),
}

# Where a class's argument has a bad value or message of its own.
CLASS_BAD_ARGUMENTS = {TrainSettings: {"seed": (TypeError, "to be an integer", None)}}

# Keyword arguments of `keras.layers.RNN` that the layers take through **kwargs.
LAYER_KWARGS = {"zero_output_for_mask": _FLAG}

_PROBE = np.zeros((2, 3, 1), dtype="float32")
# The arguments a class needs besides the one under test.
REQUIRED = {
    ks.GradientNormLogger: {"log_dir": "logs", "probe_inputs": _PROBE, "probe_targets": _PROBE},
    TrainSettings: {},
}
# Arguments checked elsewhere: the probe batches (`tests/test_gradient_logger.py`).
CHECKED_ELSEWHERE = {"probe_inputs", "probe_targets"}

PUBLIC_CLASSES = [*CLASSES, ks.GradientNormLogger, TrainSettings]


def _constructor_arguments(cls):
    return [
        name
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    ]


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=[cls.__name__ for cls in PUBLIC_CLASSES])
def test_every_constructor_argument_has_a_bad_value_case(cls):
    unchecked = set(_constructor_arguments(cls)) - set(BAD_ARGUMENTS) - CHECKED_ELSEWHERE
    assert not unchecked, f"{cls.__name__} arguments without a bad-value case: {unchecked}"


def _cases(cls):
    names = [name for name in _constructor_arguments(cls) if name not in CHECKED_ELSEWHERE]
    cases = {name: BAD_ARGUMENTS[name] for name in names}
    cases.update(CLASS_BAD_ARGUMENTS.get(cls, {}))
    if issubclass(cls, keras.layers.RNN):
        cases.update(LAYER_KWARGS)
    return cases


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=[cls.__name__ for cls in PUBLIC_CLASSES])
def test_every_constructor_argument_is_validated(cls):
    for name, (error, expected, value) in _cases(cls).items():
        arguments = {**REQUIRED.get(cls, {"units": UNITS}), name: value}
        with pytest.raises(error) as raised:
            cls(**arguments)
        message = str(raised.value)
        assert f"Expected `{name}` {expected}" in message, message
        assert message.endswith(f"Received: {name}={value!r}"), message


@pytest.mark.parametrize("cls", CLASSES, ids=CLASS_IDS)
def test_what_keras_accepts_is_accepted(cls):
    """None initializers, regularizers and constraints, objects, config dicts and
    NumPy booleans, as `keras.layers.LSTM` takes them."""
    accepted = {
        "kernel_initializer": None,
        "recurrent_initializer": keras.initializers.Constant(0.1),
        "bias_initializer": {"class_name": "Zeros", "config": {}},
        "kernel_regularizer": "l2",
        "recurrent_regularizer": None,
        "bias_regularizer": keras.regularizers.L1(0.01),
        "kernel_constraint": "non_neg",
        "recurrent_constraint": None,
        "bias_constraint": keras.constraints.MaxNorm(2.0),
        "use_bias": np.bool_(True),
    }
    if issubclass(cls, keras.layers.RNN):
        accepted.update(activity_regularizer=None, return_sequences=np.bool_(False))
    layer = cls(UNITS, **accepted)
    assert layer.use_bias is True
    assert isinstance(layer.recurrent_initializer, keras.initializers.Constant)
    assert isinstance(layer.kernel_regularizer, keras.regularizers.L2)
    assert layer.recurrent_regularizer is None
    if issubclass(cls, keras.layers.RNN):
        output = layer(_zeros(BATCH, TIMESTEPS, FEATURES))
        assert tuple(output.shape) == (BATCH, UNITS)
        assert cls.from_config(layer.get_config()).get_config() == layer.get_config()


# --------------------------------------------- the shared rules themselves
@pytest.mark.parametrize(
    ("check", "value", "error", "message"),
    [
        (_checks.check_positive_int, 0, ValueError, "`n` to be a positive integer. Received: n=0"),
        (_checks.check_positive_int, 2.0, TypeError, "`n` to be an integer. Received: n=2.0"),
        (_checks.check_positive_int, np.True_, TypeError, "`n` to be an integer"),
        (_checks.check_optional_positive_int, -1, ValueError, "a positive integer. Received: n=-1"),
        (_checks.check_positive_number, 0.0, ValueError, "`n` to be a positive number"),
        (_checks.check_positive_number, float("nan"), ValueError, "Received: n=nan"),
        (_checks.check_positive_number, "1", TypeError, "`n` to be a number. Received: n='1'"),
        (_checks.check_optional_positive_number, True, TypeError, "`n` to be a number"),
    ],
)
def test_shared_checks_raise_type_error_for_a_type_and_value_error_for_a_value(
    check, value, error, message
):
    with pytest.raises(error, match=re.escape(message)):
        check("n", value)


def test_shared_checks_return_what_to_store():
    assert _checks.check_positive_int("n", np.int64(3)) == 3
    assert type(_checks.check_positive_int("n", np.int64(3))) is int
    assert _checks.check_optional_positive_int("n", None) is None
    assert _checks.check_int_at_least("n", 0, 0) == 0
    with pytest.raises(ValueError, match=re.escape("`n` to be an integer >= 2. Received: n=1")):
        _checks.check_int_at_least("n", 1, 2)
    assert _checks.check_positive_number("n", 3) == 3.0
    assert _checks.check_optional_positive_number("n", None) is None
    with pytest.raises(ValueError, match=re.escape("a finite number above 2. Received: n=2")):
        _checks.check_number_above("n", 2, 2)
