"""Bad inputs, one table: every one is refused with a clear error.

An API case asserts the exception type and that the message names the
argument, the received value and what was expected. A CLI case asserts a
non-zero exit status and one line on stderr (no traceback) that names the
same three things. `tests/test_errors.py` checks the cells' and layers'
argument errors exhaustively; this table covers every kind of bad input once,
across the API and the command line, and the documented behaviour of inputs
that are not errors (NaN and Inf values, all-masked rows).
"""

import dataclasses
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from keras_seqcells import cli
from keras_seqcells.tasks import (
    DataError,
    Forecasting,
    NextWord,
    Tagging,
    TextClassification,
    TrainSettings,
    get_task,
)
from keras_seqcells.tasks.forecasting import read_series_csv
from tests import reference

ROOT = Path(__file__).resolve().parent.parent
BATCH, TIMESTEPS, FEATURES, UNITS = 2, 5, 3, 4


def _zeros(*shape):
    return np.zeros(shape, dtype="float32")


# ------------------------------------------------------------------ bad files
def _write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return path


def _csv(folder, *rows, name="series.csv"):
    return _write(folder, name, "\n".join(rows) + "\n")


def _dated(values, header=True):
    """A daily CSV series of `values` (strings), with or without a header row."""
    rows = [f"2000-01-{day + 1:02d},{value}" for day, value in enumerate(values)]
    return (["Date,Temp"] if header else []) + rows


def _saved_model(folder, name="model.keras"):
    """A tiny forecasting-shaped model: windows of 5 values to 2 forecasts."""
    model = keras.Sequential([keras.Input((5, 1)), ks.GRU(2), keras.layers.Dense(2)])
    path = folder / name
    model.save(path)
    return path


def _truncated_model(folder):
    good = _saved_model(folder, "good.keras").read_bytes()
    path = folder / "truncated.keras"
    path.write_bytes(good[: len(good) // 2])
    return path


def _bit_flipped_model(folder):
    data = bytearray(_saved_model(folder, "good.keras").read_bytes())
    with zipfile.ZipFile(folder / "good.keras") as archive:
        info = archive.getinfo("model.weights.h5")
    # A byte in the middle of the weights member's stored data.
    data[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0x01
    path = folder / "flipped.keras"
    path.write_bytes(bytes(data))
    return path


def _foreign_model(folder):
    """A zip archive laid out like a .keras file, written by another library."""
    path = folder / "foreign.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "config.json", json.dumps({"module": "torch.nn", "class_name": "torch.nn.Linear"})
        )
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
    return path


def _zip_without_keras_files(folder):
    path = folder / "other.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("weights.pt", b"\x80\x04not a keras archive")
    return path


# ------------------------------------------------------------------ API cases
@dataclasses.dataclass(frozen=True)
class ApiCase:
    """`call(tmp_path)` raises `error` naming `argument`, `received` and `expected`."""

    id: str
    call: Callable
    error: type
    argument: str
    received: str
    expected: str


def _layer_call(layer, *args, **kwargs):
    return lambda _: layer(*args, **kwargs)


def _built_lstm_cell():
    cell = ks.LSTMCell(UNITS)
    cell.build((None, FEATURES))
    return cell


def _forecasting_csv(*rows, **options):
    return lambda tmp: Forecasting(**options).load_data(str(_csv(tmp, *rows)))


API_CASES = [
    ApiCase("units_zero", lambda _: ks.LSTM(0), ValueError, "units", "units=0", "positive"),
    ApiCase("units_float", lambda _: ks.GRU(2.5), TypeError, "units", "units=2.5", "an integer"),
    ApiCase(
        "units_string",
        lambda _: ks.SimpleRNNCell("4"),
        TypeError,
        "units",
        "units='4'",
        "an integer",
    ),
    ApiCase(
        "dropout_one",
        lambda _: ks.SimpleRNN(UNITS, dropout=1.0),
        ValueError,
        "dropout",
        "dropout=1.0",
        "in [0, 1)",
    ),
    ApiCase(
        "recurrent_dropout_negative",
        lambda _: ks.GRUCell(UNITS, recurrent_dropout=-0.1),
        ValueError,
        "recurrent_dropout",
        "recurrent_dropout=-0.1",
        "in [0, 1)",
    ),
    ApiCase(
        "unknown_activation",
        lambda _: ks.LSTM(UNITS, activation="swishy"),
        ValueError,
        "activation",
        "activation='swishy'",
        "a Keras activation",
    ),
    ApiCase(
        "unknown_recurrent_activation",
        lambda _: ks.GRUCell(UNITS, recurrent_activation="nope"),
        ValueError,
        "recurrent_activation",
        "recurrent_activation='nope'",
        "a Keras activation",
    ),
    ApiCase(
        "flag_not_a_bool",
        lambda _: ks.GRU(UNITS, reset_after="False"),
        TypeError,
        "reset_after",
        "reset_after='False'",
        "to be a boolean",
    ),
    ApiCase(
        "unknown_initializer",
        lambda _: ks.LSTMCell(UNITS, kernel_initializer="glorot_unicorn"),
        ValueError,
        "kernel_initializer",
        "kernel_initializer='glorot_unicorn'",
        "a Keras initializer",
    ),
    ApiCase(
        "unknown_regularizer",
        lambda _: ks.SimpleRNN(UNITS, activity_regularizer="l3"),
        ValueError,
        "activity_regularizer",
        "activity_regularizer='l3'",
        "a Keras regularizer",
    ),
    ApiCase(
        "unknown_constraint",
        lambda _: ks.GRUCell(UNITS, bias_constraint="positive"),
        ValueError,
        "bias_constraint",
        "bias_constraint='positive'",
        "a Keras constraint",
    ),
    ApiCase(
        "input_rank_2",
        lambda _: ks.LSTM(UNITS)(_zeros(BATCH, FEATURES)),
        ValueError,
        "sequences",
        "sequences.shape=(2, 3)",
        "rank 3 (batch, timesteps, features)",
    ),
    ApiCase(
        "input_rank_4",
        lambda _: ks.GRU(UNITS)(_zeros(BATCH, TIMESTEPS, FEATURES, 1)),
        ValueError,
        "sequences",
        "sequences.shape=(2, 5, 3, 1)",
        "rank 3 (batch, timesteps, features)",
    ),
    ApiCase(
        "zero_length_sequences",
        lambda _: ks.SimpleRNN(UNITS)(_zeros(BATCH, 0, FEATURES)),
        ValueError,
        "sequences",
        "sequences.shape=(2, 0, 3)",
        "at least one timestep",
    ),
    ApiCase(
        "initial_state_count",
        lambda _: ks.LSTM(UNITS)(
            _zeros(BATCH, TIMESTEPS, FEATURES), initial_state=[_zeros(BATCH, UNITS)]
        ),
        ValueError,
        "initial_state",
        "initial_state shapes=[(2, 4)]",
        "2 tensor(s) of shapes",
    ),
    ApiCase(
        "initial_state_shape",
        lambda _: ks.GRU(UNITS)(
            _zeros(BATCH, TIMESTEPS, FEATURES), initial_state=[_zeros(BATCH, UNITS + 1)]
        ),
        ValueError,
        "initial_state",
        "initial_state shapes=[(2, 5)]",
        "1 tensor(s) of shapes",
    ),
    ApiCase(
        "initial_state_batch",
        lambda _: ks.GRU(UNITS)(
            _zeros(BATCH, TIMESTEPS, FEATURES), initial_state=[_zeros(BATCH + 1, UNITS)]
        ),
        ValueError,
        "initial_state",
        "initial_state batch sizes=[3]",
        "the batch size of `sequences` (2)",
    ),
    ApiCase(
        "named_weight_unknown_name",
        lambda _: _built_lstm_cell().set_named_weights({"W_xq": np.zeros((UNITS, FEATURES))}),
        ValueError,
        "weight names",
        "unknown name(s): ['W_xq']",
        "Expected weight names among",
    ),
    ApiCase(
        "named_weight_wrong_shape",
        lambda _: _built_lstm_cell().set_named_weights({"W_xi": np.zeros((UNITS, FEATURES + 1))}),
        ValueError,
        "W_xi",
        "W_xi.shape=(4, 4)",
        "of shape (4, 3)",
    ),
    ApiCase(
        "named_weights_not_a_dict",
        lambda _: _built_lstm_cell().set_named_weights([np.zeros((UNITS, FEATURES))]),
        TypeError,
        "weights",
        "weights of type list",
        "a dict of name -> array",
    ),
    ApiCase(
        "from_keras_dense",
        lambda _: ks.from_keras(keras.layers.Dense(3)),
        TypeError,
        "layer",
        "layer=<Dense",
        "a keras.layers.SimpleRNN, LSTM or GRU",
    ),
    ApiCase(
        "from_keras_bidirectional",
        lambda _: ks.from_keras(keras.layers.Bidirectional(keras.layers.LSTM(3))),
        TypeError,
        "layer",
        "layer=<Bidirectional",
        "a keras.layers.SimpleRNN, LSTM or GRU",
    ),
    ApiCase(
        "from_keras_conv_lstm",
        lambda _: ks.from_keras(keras.layers.ConvLSTM1D(3, 3)),
        TypeError,
        "layer",
        "layer=<ConvLSTM1D",
        "a keras.layers.SimpleRNN, LSTM or GRU",
    ),
    ApiCase(
        "to_keras_dense",
        lambda _: ks.to_keras(keras.layers.Dense(3)),
        TypeError,
        "layer",
        "layer=<Dense",
        "a keras_seqcells.SimpleRNN, LSTM or GRU",
    ),
    ApiCase(
        "settings_unknown_cell",
        lambda _: TrainSettings(cell="transformer"),
        ValueError,
        "cell",
        "'transformer'",
        "'gru', 'layer_norm_gru', 'layer_norm_lstm', 'layer_norm_simple_rnn', 'lstm', 'min_gru'",
    ),
    ApiCase(
        "settings_zero_epochs",
        lambda _: TrainSettings(epochs=0),
        ValueError,
        "epochs",
        "epochs=0",
        "a positive integer",
    ),
    ApiCase(
        "unknown_task",
        lambda _: get_task("translation"),
        ValueError,
        "task",
        "task='translation'",
        "one of ['forecasting', 'next-word', 'tagging', 'text-classification']",
    ),
    ApiCase(
        "unknown_task_option",
        lambda _: get_task("forecasting", windw=30),
        ValueError,
        "options of the forecasting task",
        "windw=30",
        "'window'",
    ),
    ApiCase(
        "text_classification_dropout",
        lambda _: TextClassification(dropout=1.5),
        ValueError,
        "dropout",
        "dropout=1.5",
        "in [0, 1)",
    ),
    ApiCase(
        "unknown_fill",
        lambda _: Forecasting(fill="mean"),
        ValueError,
        "fill",
        "fill='mean'",
        "one of [None, 'previous', 'linear']",
    ),
    ApiCase(
        "csv_missing_value",
        _forecasting_csv(*_dated(["1", "2", "", "4"])),
        DataError,
        "fill",
        "'' on line 4",
        "a value in every row of the value column 'Temp'",
    ),
    ApiCase(
        "csv_nan_value",
        _forecasting_csv(*_dated(["1", "NaN", "3"])),
        DataError,
        "fill",
        "'NaN' on line 3",
        "a value in every row of the value column 'Temp'",
    ),
    ApiCase(
        "csv_all_missing_with_fill",
        lambda tmp: read_series_csv(_csv(tmp, *_dated(["", "nan"])), fill="linear"),
        DataError,
        "value column 'Temp'",
        "all 2 value(s) missing",
        "at least one value",
    ),
    ApiCase(
        "csv_non_numeric",
        _forecasting_csv(*_dated(["1", "warm", "3"]), fill="linear"),
        DataError,
        "value column 'Temp'",
        "'warm' on line 3",
        "finite numbers",
    ),
    ApiCase(
        "csv_infinite",
        _forecasting_csv(*_dated(["1", "inf", "3"])),
        DataError,
        "value column 'Temp'",
        "'inf' on line 3",
        "finite numbers",
    ),
    ApiCase(
        "csv_no_header",
        _forecasting_csv(*_dated(["1", "2", "3"], header=False)),
        DataError,
        "source",
        "first row ['2000-01-01', '1'] holds data",
        "a header row naming its columns",
    ),
    ApiCase(
        "csv_short_row",
        _forecasting_csv("Date,Temp", "2000-01-01,1", "2000-01-02"),
        DataError,
        "source",
        "line 3",
        "2 columns in every row",
    ),
    ApiCase(
        "csv_empty",
        _forecasting_csv(""),
        DataError,
        "source",
        "(empty)",
        "a header row and data rows",
    ),
    ApiCase(
        "empty_text_file",
        lambda tmp: NextWord().load_data(str(_write(tmp, "empty.txt", ""))),
        DataError,
        "source",
        "(no words)",
        "to contain words",
    ),
    ApiCase(
        "empty_polarity_files",
        lambda tmp: (
            _write(tmp, "a.pos", "fine\n"),
            _write(tmp, "a.neg", "\n\n"),
            TextClassification().load_data(str(tmp)),
        ),
        DataError,
        "source",
        "(no sentence)",
        "one sentence a line",
    ),
    ApiCase(
        "empty_conllu_file",
        lambda tmp: Tagging().load_data(str(_write(tmp, "empty.conllu", ""))),
        DataError,
        "source",
        "(no sentence)",
        "a CoNLL-U file",
    ),
    ApiCase(
        "missing_data_file",
        lambda tmp: Forecasting().load_data(str(tmp / "absent.csv")),
        DataError,
        "source",
        "absent.csv",
        "an existing file",
    ),
    ApiCase(
        "forecast_window_with_nan",
        lambda tmp: Forecasting().predict(
            keras.saving.load_model(_saved_model(tmp)), ["1,2,nan,4,5"]
        ),
        ValueError,
        "inputs",
        "'nan' in '1,2,nan,4,5'",
        "finite numbers",
    ),
    ApiCase(
        "model_truncated",
        lambda tmp: cli.load_model(_truncated_model(tmp)),
        ValueError,
        "--model",
        "truncated.keras",
        "a .keras model saved by Keras",
    ),
    ApiCase(
        "model_bit_flipped",
        lambda tmp: cli.load_model(_bit_flipped_model(tmp)),
        ValueError,
        "--model",
        "flipped.keras (corrupt member 'model.weights.h5')",
        "a .keras model saved by Keras",
    ),
    ApiCase(
        "model_from_another_library",
        lambda tmp: cli.load_model(_foreign_model(tmp)),
        ValueError,
        "--model",
        "foreign.keras (its model class 'torch.nn.Linear' comes from module 'torch.nn'",
        "a .keras model saved by Keras",
    ),
    ApiCase(
        "model_zip_without_keras_files",
        lambda tmp: cli.load_model(_zip_without_keras_files(tmp)),
        ValueError,
        "--model",
        "other.keras (no Keras config.json",
        "a .keras model saved by Keras",
    ),
    ApiCase(
        "model_not_a_zip",
        lambda tmp: cli.load_model(_write(tmp, "text.keras", "not a model")),
        ValueError,
        "--model",
        "text.keras (not a readable zip archive",
        "a .keras model saved by Keras",
    ),
]


@pytest.mark.parametrize("case", API_CASES, ids=[case.id for case in API_CASES])
def test_api_refuses_bad_input(case, tmp_path):
    with pytest.raises(case.error) as raised:
        case.call(tmp_path)
    message = str(raised.value)
    assert "Expected" in message, message
    for fragment in (case.argument, case.received, case.expected):
        assert fragment in message, f"{fragment!r} not in {message!r}"


# ------------------------------------------------------------------ CLI cases
@dataclasses.dataclass(frozen=True)
class CliCase:
    """`keras-seqcells ARGV` (files made by `files(tmp_path)`) fails with one clear line."""

    id: str
    argv: list
    fragments: tuple
    files: Callable = lambda tmp: None


def _cli_files(tmp):
    _csv(tmp, *_dated([str(v) for v in range(40)]), name="good.csv")
    _csv(tmp, *_dated(["1", "2", "nan", "4"]), name="gappy.csv")
    _csv(tmp, *_dated(["1", "2", "3"], header=False), name="headless.csv")
    _csv(tmp, *_dated(["1", "two", "3"]), name="words.csv")
    _write(tmp, "empty.txt", "")
    _saved_model(tmp, "model.keras")
    _truncated_model(tmp)
    _foreign_model(tmp)


TRAIN = ["train", "--output-dir", "out", "--epochs", "1"]

CLI_CASES = [
    CliCase("unknown_command", ["fit"], ("argument command", "'fit'", "choose from")),
    CliCase(
        "unknown_task", ["train", "translation"], ("argument task", "'translation'", "choose from")
    ),
    CliCase(
        "unknown_cell",
        [*TRAIN, "forecasting", "--cell", "transformer"],
        ("--cell", "'transformer'", "choose from"),
    ),
    CliCase(
        "unknown_option",
        [*TRAIN, "forecasting", "--frobnicate"],
        ("unrecognized arguments", "--frobnicate", "keras-seqcells --help"),
    ),
    CliCase(
        "non_integer_units",
        [*TRAIN, "forecasting", "--units", "four"],
        ("--units", "'four'", "int"),
    ),
    CliCase(
        "zero_units",
        [*TRAIN, "forecasting", "--units", "0", "--source", "good.csv"],
        ("units", "units=0", "a positive integer"),
    ),
    CliCase(
        "unknown_task_option",
        [*TRAIN, "forecasting", "--task-option", "windw=30"],
        ("options of the forecasting task", "windw=30", "'window'"),
    ),
    CliCase(
        "task_option_without_value",
        [*TRAIN, "forecasting", "--task-option", "window"],
        ("--task-option", "'window'", "KEY=VALUE"),
    ),
    CliCase(
        "csv_with_nan_without_fill",
        [*TRAIN, "forecasting", "--source", "gappy.csv"],
        ("fill", "'nan' on line 4", "a value in every row"),
    ),
    CliCase(
        "unknown_fill",
        [*TRAIN, "forecasting", "--source", "gappy.csv", "--task-option", "fill=zero"],
        ("fill", "fill='zero'", "one of [None, 'previous', 'linear']"),
    ),
    CliCase(
        "csv_without_header",
        [*TRAIN, "forecasting", "--source", "headless.csv"],
        ("source", "headless.csv", "a header row"),
    ),
    CliCase(
        "csv_non_numeric",
        [*TRAIN, "forecasting", "--source", "words.csv"],
        ("value column 'Temp'", "'two' on line 3", "finite numbers"),
    ),
    CliCase(
        "empty_text_file",
        [*TRAIN, "next-word", "--source", "empty.txt"],
        ("source", "empty.txt (no words)", "contain words"),
    ),
    CliCase(
        "missing_source",
        [*TRAIN, "forecasting", "--source", "absent.csv"],
        ("source", "absent.csv", "an existing file"),
    ),
    CliCase(
        "missing_model",
        ["evaluate", "forecasting", "--model", "absent.keras"],
        ("--model", "absent.keras", "a saved .keras file"),
    ),
    CliCase(
        "truncated_model",
        ["predict", "forecasting", "1,2,3,4,5", "--model", "truncated.keras"],
        ("--model", "truncated.keras", "a .keras model saved by Keras"),
    ),
    CliCase(
        "foreign_model",
        ["evaluate", "forecasting", "--model", "foreign.keras"],
        ("--model", "foreign.keras", "a .keras model saved by Keras"),
    ),
    CliCase(
        "gates_of_a_foreign_model",
        ["gates", "foreign.keras", "1,2,3"],
        ("MODEL", "foreign.keras", "a .keras model saved by Keras"),
    ),
    CliCase(
        "predict_nan_window",
        ["predict", "forecasting", "1,2,nan,4,5", "--model", "model.keras"],
        ("inputs", "'nan'", "finite numbers"),
    ),
    CliCase(
        "predict_short_window",
        ["predict", "forecasting", "1,2", "--model", "model.keras"],
        ("2 value(s) in '1,2'", "Received", "at least 5 comma-separated values"),
    ),
    CliCase(
        "gradients_one_timestep",
        ["gradients", "--timesteps", "1"],
        ("--timesteps", "--timesteps=1", "an integer >= 2"),
    ),
]


def _run_cli(argv, capsys):
    try:
        status = cli.main(argv)
    except SystemExit as exit_:
        status = exit_.code
    return status, capsys.readouterr()


@pytest.mark.parametrize("case", CLI_CASES, ids=[case.id for case in CLI_CASES])
def test_cli_refuses_bad_input(case, tmp_path, monkeypatch, capsys):
    _cli_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    status, captured = _run_cli(case.argv, capsys)
    assert status not in (0, None)
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("keras-seqcells"), lines[0]
    assert "Traceback" not in captured.err
    for fragment in case.fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert not (tmp_path / "out" / "model.keras").exists()


GAPPY = ["--source", "gappy.csv", "--output-dir", "out"]


def test_cli_in_a_real_process_fails_with_one_line_and_no_traceback(tmp_path):
    _cli_files(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "keras_seqcells.cli", "train", "forecasting", *GAPPY],
        cwd=tmp_path,
        env={**_environment(), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("keras-seqcells")]
    assert len(errors) == 1 and "fill" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def _environment():
    import os

    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_the_documented_count_is_the_tables():
    """RELIABILITY.md states how many bad inputs this table checks; it must be exact."""
    text = (ROOT / "RELIABILITY.md").read_text()
    row = re.search(r"\| `tests/test_bad_inputs.py` \| (\d+) \((\d+) API, (\d+) CLI\) \|", text)
    assert row, "the bad-input row of RELIABILITY.md's table is missing"
    total, api, cli_count = (int(group) for group in row.groups())
    assert (api, cli_count) == (len(API_CASES), len(CLI_CASES))
    assert total == len(API_CASES) + len(CLI_CASES)
    stated = re.search(r"Each of the (\d+) cases", text)
    assert stated and int(stated.group(1)) == total
    for cases in (API_CASES, CLI_CASES):
        assert len({case.id for case in cases}) == len(cases), "a case counted twice"


# ------------------------------------------------------ documented behaviour
def test_missing_values_are_filled_only_when_asked(tmp_path):
    path = _csv(tmp_path, *_dated(["", "2", "NA", "?", "8", "null"]))
    _, previous = read_series_csv(path, fill="previous")
    _, linear = read_series_csv(path, fill="linear")
    np.testing.assert_array_equal(previous, [2, 2, 2, 2, 8, 8])
    np.testing.assert_array_equal(linear, [2, 2, 4, 6, 8, 8])
    with pytest.raises(DataError, match="fill"):
        read_series_csv(path)


KINDS = {ks.SimpleRNN: "simple_rnn", ks.LSTM: "lstm", ks.GRU: "gru"}


@pytest.mark.parametrize("cls", [ks.SimpleRNN, ks.LSTM, ks.GRU])
def test_nan_and_inf_inputs_propagate_to_their_own_row_only(cls):
    """Non-finite inputs are not checked inside the graph (that would cost every
    step a reduction): a NaN makes its own row's output NaN, never a finite
    wrong value, and leaves the other rows exact. An Inf saturates the
    activations (tanh(±inf) = ±1, σ(±inf) = 1 or 0) as the equations say, or
    gives NaN where they compute inf - inf."""
    layer = cls(UNITS, return_sequences=True)
    inputs = np.random.default_rng(0).normal(size=(4, TIMESTEPS, FEATURES)).astype("float32")
    clean = keras.ops.convert_to_numpy(layer(inputs))
    bad = inputs.copy()
    bad[1, 2, 0] = np.nan
    bad[2, 2, 0] = np.inf
    bad[3, 2, :2] = (np.inf, -np.inf)
    outputs = keras.ops.convert_to_numpy(layer(bad))
    assert np.isnan(outputs[1, 2:]).all()
    np.testing.assert_array_equal(outputs[1, :2], clean[1, :2])
    np.testing.assert_array_equal(outputs[0], clean[0])
    np.testing.assert_array_equal(outputs[2:, :2], clean[2:, :2])

    # A single infinite feature saturates every unit at its step: finite
    # outputs, the float64 equations' own.
    with np.errstate(over="ignore", invalid="ignore"):
        expected, _, _ = reference.run(
            KINDS[cls],
            layer.cell.named_weights(),
            bad.astype("float64"),
            [np.zeros((4, UNITS))] * len(layer.cell._state_sizes()),
        )
    assert np.isfinite(outputs[2]).all()
    np.testing.assert_allclose(outputs[2], expected[2], rtol=1e-5, atol=1e-5)
    if cls is ks.SimpleRNN:
        # h_t = tanh(±inf) = ±1 exactly, with the sign of the feature's weights.
        np.testing.assert_array_equal(
            outputs[2, 2], np.sign(layer.cell.named_weights()["W_xh"][:, 0])
        )
    # +inf and -inf in one step: NaN exactly where the equations compute
    # inf - inf, and the equations' values elsewhere.
    np.testing.assert_array_equal(np.isnan(outputs[3]), np.isnan(expected[3]))
    assert np.isnan(outputs[3]).any()
    np.testing.assert_allclose(outputs[3], expected[3], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [ks.SimpleRNN, ks.LSTM, ks.GRU])
def test_an_all_masked_row_keeps_its_initial_state(cls):
    """A row whose every step is masked returns its initial state (zeros by
    default) and its states unchanged; the other rows are unaffected."""
    layer = cls(UNITS, return_state=True)
    inputs = np.random.default_rng(1).normal(size=(BATCH, TIMESTEPS, FEATURES)).astype("float32")
    mask = np.ones((BATCH, TIMESTEPS), dtype=bool)
    mask[0] = False
    output, *states = layer(inputs, mask=mask)
    unmasked, *_ = layer(inputs[1:])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(output)[0], np.zeros(UNITS))
    for state in states:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(state)[0], np.zeros(UNITS))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(output)[1:], keras.ops.convert_to_numpy(unmasked), atol=1e-6
    )
