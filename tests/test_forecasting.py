"""The forecasting task on tiny settings: data, models, saving and errors."""

import doctest
import json

import keras
import numpy as np
import pytest

from keras_seqcells.tasks import DataError, TrainSettings, forecasting
from keras_seqcells.tasks.forecasting import Forecasting, read_series_csv
from tests.task_helpers import tiny_settings

TINY_TASK = {"window": 8, "horizon": 3, "min_epoch_windows": 1}


def write_csv(path, header, rows):
    lines = [",".join(header), *(",".join(str(cell) for cell in row) for row in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def monthly_rows(count, start_year=2000):
    rows = []
    for month in range(count):
        date = f"{start_year + month // 12}-{month % 12 + 1:02d}"
        rows.append((month, date, round(100 + month + 10 * np.sin(month * np.pi / 6), 2)))
    return rows


def test_shipped_series_are_split_chronologically():
    data = Forecasting().load_data()
    assert (data.window, data.horizon, data.season) == (30, 7, 365)
    assert len(data.values) == 3650
    assert (data.validation_start, data.test_start) == (2555, 2920)
    train_targets = data.train_origins[:, None] + np.arange(1, data.horizon + 1)
    assert train_targets.max() < data.validation_start  # no target leaks from later parts
    assert data.validation_origins[0] + 1 == data.validation_start
    assert data.test_origins[0] + 1 == data.test_start
    assert data.test_origins[-1] + data.horizon == len(data.values) - 1
    assert data.mean == pytest.approx(np.mean(data.values[: data.validation_start]))
    assert data.std == pytest.approx(np.std(data.values[: data.validation_start]))
    inputs, targets = data.inputs("test"), data.targets("test")
    assert inputs.shape == (724, 30, 1) and inputs.dtype == np.float32
    t = data.test_origins[5]
    np.testing.assert_allclose(inputs[5, :, 0], data.values[t - 29 : t + 1], rtol=1e-6)
    np.testing.assert_allclose(targets[5], data.values[t + 1 : t + 8], rtol=1e-6)
    np.testing.assert_allclose(data.step_targets("test")[:, -1], targets)
    np.testing.assert_allclose(data.seasonal_naive("test")[5], data.values[t - 364 : t - 357])
    np.testing.assert_allclose(data.persistence("test")[5], [data.values[t]] * 7)
    baselines = Forecasting().baselines(data)
    assert baselines["persistence"]["mae"] == pytest.approx(2.6238, abs=1e-4)
    assert baselines["seasonal naive (season=365)"]["mae"] == pytest.approx(2.9731, abs=1e-4)

    airline = Forecasting().load_data("airline-passengers")
    assert (airline.window, airline.horizon, airline.season) == (24, 6, 12)
    assert len(airline.test_origins) == 24
    assert doctest.testmod(forecasting).failed == 0


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_tiny_model_trains_evaluates_saves_and_reloads(cell, tmp_path):
    task = Forecasting(**TINY_TASK)
    result = task.train(tiny_settings(tmp_path, cell=cell), limit=32)
    assert result.model.output_shape == (None, 3)
    assert np.isfinite(result.metrics["mae"]) and result.metrics["test_windows"] == 32
    assert result.metrics["rmse"] >= result.metrics["mae"]
    assert set(result.baselines) == {"persistence", "seasonal naive (season=365)"}
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["settings"]["cell"] == cell
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    inputs = ["12.5, 13.0, 11.2, 10.9, 14.1, 15.0, 13.3, 12.8", "1,2,3,4,5,6,7,8,9"]
    forecasts = task.predict(result.model, inputs)
    assert len(forecasts) == 2 and all(len(f) == 3 for f in forecasts)
    assert all(isinstance(value, float) for value in forecasts[0])
    np.testing.assert_allclose(task.predict(reloaded, inputs), forecasts, rtol=1e-6)
    data = task.load_data(limit=32)
    assert task.evaluate(reloaded, data)["mae"] == pytest.approx(result.metrics["mae"])


@pytest.mark.parametrize("reference", ["none", "last", "season"])
def test_many_to_many_model_forecasts_after_every_step(reference, tmp_path):
    task = Forecasting(window=12, horizon=3, mode="many_to_many", reference=reference)
    data = task.load_data("airline-passengers")
    model = task.build_model(data, TrainSettings(units=4, output_dir="unused"))
    steps = 1 if reference == "season" else 12  # the steps whose reference is in the window
    assert tuple(model.output["forecast"].shape) == (None, 3)
    assert tuple(model.output["steps"].shape) == (None, steps, 3)
    outputs = model.predict(data.inputs("test"), verbose=0)
    np.testing.assert_allclose(outputs["steps"][:, -1], outputs["forecast"])
    forecaster = forecasting.forecast_model(model)
    forecaster.save(tmp_path / "forecaster.keras")
    reloaded = keras.saving.load_model(tmp_path / "forecaster.keras", safe_mode=True)
    np.testing.assert_allclose(
        forecasting.forecast(reloaded, data.inputs("test")), outputs["forecast"], rtol=1e-6
    )
    train_ds, _ = task.datasets(data, batch_size=8)
    _, targets = next(iter(train_ds))
    assert tuple(targets["steps"].shape) == (8, steps, 3)
    np.testing.assert_allclose(targets["steps"][:, -1], targets["forecast"])


def test_many_to_many_trains_on_all_steps_and_saves_the_forecast(tmp_path):
    task = Forecasting(
        window=12, horizon=3, mode="many_to_many", reference="last", min_epoch_windows=1
    )
    result = task.train(tiny_settings(tmp_path), source="airline-passengers")
    assert "val_forecast_mae" in result.history
    assert result.model.output_shape == (None, 3)  # the saved model answers forecasts only
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert reloaded.output_shape == (None, 3)
    data = task.load_data("airline-passengers")
    inputs = [",".join(str(v) for v in data.values[-20:])]
    np.testing.assert_allclose(
        task.predict(reloaded, inputs), task.predict(result.model, inputs), rtol=1e-6
    )
    assert result.metrics["mae"] == pytest.approx(task.evaluate(reloaded, data)["mae"])


def test_model_answers_in_the_series_units(tmp_path):
    task = Forecasting(window=24, horizon=6, reference="season")
    data = task.load_data("airline-passengers")
    model = task.build_model(data, TrainSettings(units=4, output_dir="unused"))
    for layer in model.layers:
        if layer.name == "change":
            layer.kernel.assign(np.zeros(layer.kernel.shape))  # no correction: seasonal naive
    forecasts = forecasting.forecast(model, data.inputs("test"))
    np.testing.assert_allclose(forecasts, data.seasonal_naive("test"), rtol=1e-5)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(forecasting.forecast(reloaded, data.inputs("test")), forecasts)


def test_custom_csv_with_named_columns(tmp_path):
    path = write_csv(tmp_path / "sales.csv", ["id", "month", "sales"], monthly_rows(72))
    task = Forecasting(date_column="month", value_column="sales", **TINY_TASK)
    data = task.load_data(str(path))
    assert data.season == 12  # inferred from the monthly dates
    assert data.values[1] == monthly_rows(2)[1][2]
    assert len(data.values) == 72 and data.test_start == 72 - 14
    model = task.build_model(data, TrainSettings(units=4, output_dir="unused"))
    assert np.isfinite(task.evaluate(model, data)["mae"])
    assert "seasonal naive (season=12)" in task.baselines(data)
    assert len(task.predict(model, ",".join(str(row[2]) for row in monthly_rows(10)))[0]) == 3
    daily = [(f"2020-01-{day:02d}", day % 7) for day in range(1, 32)]
    with pytest.raises(DataError, match="season=365"):
        Forecasting(window=3, horizon=1).load_data(
            str(write_csv(tmp_path / "d.csv", ["day", "value"], daily))
        )
    weekly = Forecasting(window=3, horizon=1, season=7)
    assert weekly.load_data(str(tmp_path / "d.csv")).season == 7
    undated = write_csv(tmp_path / "u.csv", ["t", "v"], [(i, i % 5) for i in range(40)])
    with pytest.raises(DataError, match="or a `season`"):
        Forecasting().load_data(str(undated))
    assert Forecasting(window=4, horizon=2, season=5).load_data(str(undated)).season == 5


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        (None, {}, "Expected `source` to be an existing file"),
        ("", {}, r"header row and data rows\. Received: .* \(empty\)"),
        ('"Date","Temp"\n', {}, r"data rows below the header"),
        ("Value\n1\n2\n", {}, r"a date column and a value column\. Received: .*\['Value'\]"),
        (
            '"Date","Temp"\n"1981-01-01",20.7\n',
            {"value_column": "Sales"},
            r"Expected `value_column` to name a column of the CSV header\. Received: "
            r"value_column='Sales' \(header of .*: \['Date', 'Temp'\]\)",
        ),
        (
            '"Date","Temp"\n"1981-01-01",20.7\n',
            {"date_column": "When"},
            r"Received: date_column='When'",
        ),
        (
            '"Date","Temp"\n"1981-01-01",20.7\n"1981-01-02",?0.2\n',
            {},
            r"finite numbers in the value column 'Temp'\. Received: '\?0\.2' on line 3",
        ),
        ('"Date","Temp"\n"1981-01-01",\n', {}, r"Received: '' on line 2"),
        ('"Date","Temp"\n"1981-01-01",nan\n', {}, r"Received: 'nan' on line 2"),
        ('"Date","Temp"\n"1981-01-02",1\n"1981-01-01",2\n', {}, "chronological order"),
        (
            "\n".join(["Month,Passengers", *(f"2000-{m:02d},{m}" for m in range(1, 13))]),
            {"window": 24, "horizon": 6},
            r"at least 55 values for window=24 and horizon=6 .* Received: 12 value\(s\)",
        ),
    ],
)
def test_missing_or_malformed_csv_is_a_clear_error(tmp_path, content, options, message):
    path = tmp_path / "series.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message):
        Forecasting(**options).load_data(str(path))


def test_read_series_csv_defaults_to_the_first_two_columns():
    from keras_seqcells.tasks.data import shipped_path

    dates, values = read_series_csv(shipped_path("timeseries", "airline-passengers.csv"))
    assert dates[:2] == ["1949-01", "1949-02"] and values[:2].tolist() == [112.0, 118.0]


def test_predict_inputs_and_options_are_checked():
    task = Forecasting(**TINY_TASK)
    data = task.load_data(limit=4)
    model = task.build_model(data, TrainSettings(units=4, output_dir="unused"))
    values = [float(v) for v in range(1, 21)]
    full = task.predict(model, ",".join(map(str, values)))
    last = task.predict(model, [", ".join(map(str, values[-8:])) + ","])
    np.testing.assert_allclose(full, last, rtol=1e-6)  # the last `window` values are used
    for inputs, message in [
        ([], "one or more non-empty strings"),
        (["  "], "one or more non-empty strings"),
        (["1,2,3"], r"at least 8 comma-separated values .* Received: 3 value\(s\)"),
        (["1,2,x,4,5,6,7,8"], r"finite numbers\. Received: 'x'"),
        (["1,2,,4,5,6,7,8"], r"finite numbers\. Received: ''"),
        (["1,2,inf,4,5,6,7,8"], r"finite numbers\. Received: 'inf'"),
    ]:
        with pytest.raises(ValueError, match=message):
            task.predict(model, inputs)
    for options, message in [
        ({"mode": "one_to_many"}, "Expected `mode` to be one of"),
        ({"reference": "mean"}, "Expected `reference` to be one of"),
        ({"window": 1}, "Expected `window` to be at least 2"),
        ({"horizon": 0}, "Expected `horizon` to be a positive integer"),
        ({"dropout": 1.0}, r"Expected `dropout` to be a float in \[0, 1\). Received: dropout=1.0"),
    ]:
        with pytest.raises(ValueError, match=message):
            Forecasting(**options)
    with pytest.raises(ValueError, match="window >= season >= horizon"):
        Forecasting(reference="season").build_model(data, TrainSettings(output_dir="unused"))
