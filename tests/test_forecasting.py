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


def weather_csv(tmp_path):
    """A daily CSV: a weekly-seasonal `temp`, a numeric `wind` and a categorical `weather`."""
    kinds = ["rain", "sun", "fog"]
    rows = [
        (
            str(np.datetime64("2020-01-01") + np.timedelta64(i, "D")),
            v,
            round(v / 2, 3),
            kinds[i % 3],
        )
        for i, v in enumerate(seasonal_values(100, 7))
    ]
    return write_csv(tmp_path / "weather.csv", ["date", "temp", "wind", "weather"], rows)


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
    values = data.values[:, 0]
    np.testing.assert_allclose(inputs[5, :, 0], values[t - 29 : t + 1], rtol=1e-6)
    np.testing.assert_allclose(targets[5], values[t + 1 : t + 8], rtol=1e-6)
    np.testing.assert_allclose(data.step_targets("test")[:, -1], targets)
    np.testing.assert_allclose(data.seasonal_naive("test")[5], values[t - 364 : t - 357])
    np.testing.assert_allclose(data.persistence("test")[5], [values[t]] * 7)
    assert Forecasting().model_reference(data) == "last"  # persistence wins on validation
    baselines = Forecasting().baselines(data)
    assert baselines["persistence"]["mae"] == pytest.approx(2.6238, abs=1e-4)
    assert baselines["seasonal naive (season=365)"]["mae"] == pytest.approx(2.9731, abs=1e-4)

    airline = Forecasting().load_data("airline-passengers")
    assert (airline.window, airline.horizon, airline.season) == (24, 6, 12)
    assert len(airline.test_origins) == 24
    assert Forecasting().model_reference(airline) == "season"
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
    inputs = [",".join(str(v) for v in data.values[-20:, 0])]
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


def test_default_window_spans_two_seasons_up_to_sixty_rows():
    windows = {None: 30, 4: 8, 12: 24, 24: 48, 30: 60, 31: 30, 52: 30, 365: 30}
    assert {season: forecasting.default_window(season) for season in windows} == windows


def test_seasonal_model_reads_the_changes_since_one_season_earlier():
    task = Forecasting(window=24, horizon=6, reference="season")
    data = task.load_data("airline-passengers")
    model = task.build_model(data, TrainSettings(units=4, output_dir="unused"))
    reads = keras.Model(model.inputs, model.get_layer("seasonal_changes").output)
    inputs = data.inputs("test")
    changes = (inputs[:, 12:] - inputs[:, :12]) / data.std[0]  # 12 rows past the first season
    np.testing.assert_allclose(reads.predict(inputs, verbose=0), changes, rtol=1e-4, atol=1e-5)
    # A window that reaches less than two rows past the season reads a season
    # more: each window row's value one season earlier.
    short = Forecasting(window=8, horizon=6, reference="season")
    short_data = short.load_data("airline-passengers")
    assert short_data.max_length == forecasting.seasonal_length(8, 12) == 20
    assert short_data.test_origins[0] + 1 == short_data.test_start
    short_model = short.build_model(short_data, TrainSettings(units=4, output_dir="unused"))
    assert short_model.input_shape == (None, 20, 1)
    reads = keras.Model(short_model.inputs, short_model.get_layer("seasonal_changes").output)
    inputs = short_data.inputs("test", 20)
    changes = (inputs[:, 12:] - inputs[:, :8]) / short_data.std[0]
    np.testing.assert_allclose(reads.predict(inputs, verbose=0), changes, rtol=1e-4, atol=1e-5)
    start = short.inference_model(short_model)
    np.testing.assert_allclose(
        forecasting.forecast(start, inputs), short_data.seasonal_naive("test"), rtol=1e-5
    )
    # Where a season more leaves the training part without a window, the
    # model reads the rows relative to the last, as a persistence model does.
    long = Forecasting(window=50, horizon=6, season=50, reference="season")
    long_data = long.load_data("airline-passengers")
    assert long_data.max_length == 50
    long_model = long.build_model(long_data, TrainSettings(units=4, output_dir="unused"))
    names = {layer.name for layer in long_model.layers}
    assert "relative_to_last" in names and "seasonal_changes" not in names


def test_custom_csv_with_named_columns(tmp_path):
    path = write_csv(tmp_path / "sales.csv", ["id", "month", "sales"], monthly_rows(72))
    task = Forecasting(date_column="month", target="sales", **TINY_TASK)
    data = task.load_data(str(path))
    assert data.season == 12  # inferred from the monthly dates
    assert data.series.columns == ["sales"]  # the index column is skipped
    assert data.values[1, 0] == monthly_rows(2)[1][2]
    assert len(data.values) == 72 and data.test_start == 72 - 14
    model = task.build_model(data, TrainSettings(units=4, output_dir="unused"))
    assert np.isfinite(task.evaluate(model, data)["mae"])
    assert "seasonal naive (season=12)" in task.baselines(data)
    assert len(task.predict(model, ",".join(str(row[2]) for row in monthly_rows(10)))[0]) == 3
    daily = [(f"2020-01-{day:02d}", day % 7) for day in range(1, 32)]
    path = write_csv(tmp_path / "d.csv", ["day", "value"], daily)
    with pytest.raises(DataError, match=r"season=28 .* pass a smaller `season`"):
        Forecasting(window=3, horizon=1, season=28).load_data(str(path))
    weekly = Forecasting(window=3, horizon=1, season=7)
    assert weekly.load_data(str(path)).season == 7


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        (None, {}, "Expected `source` to be an existing file"),
        ("", {}, r"header row and data rows\. Received: .* \(empty\)"),
        ('"Date","Temp"\n', {}, r"data rows below the header"),
        ("Value\n1\n2\n", {}, r"at least \d+ values for window=2 .* Received: 2 value\(s\)"),
        ("Date\n2000-01-01\n", {}, r"a value column beside its dates and index\. .*\['Date'\]"),
        (
            '"Date","Temp"\n"1981-01-01",20.7\n',
            {"target": "Sales"},
            r"Expected `target` to name columns of the CSV header\. Received: "
            r"target='Sales' \('Sales' is not in the header of .*: \['Date', 'Temp'\]\)",
        ),
        (
            '"Date","Temp"\n"1981-01-01",20.7\n',
            {"features": "Temp,Wind"},
            r"Received: features='Temp,Wind' \('Wind' is not in the header",
        ),
        (
            "Date,Temp\n1981-01-01,20.7\nlater,20.1\n",
            {"date_column": "Date"},
            r"dates in the date column 'Date'\. Received: 'later' on line 3",
        ),
        ("Date,Temp\n1981-01-01,20.7\n1981-01-02,1,2\n", {}, "as many cells in every row"),
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
        ({"window": 1}, "Expected `window` to be an integer >= 2"),
        ({"horizon": 0}, "Expected `horizon` to be a positive integer"),
        ({"dropout": 1.0}, r"Expected `dropout` to be a float in \[0, 1\). Received: dropout=1.0"),
    ]:
        with pytest.raises(ValueError, match=message):
            Forecasting(**options)
    many_to_many = Forecasting(mode="many_to_many", reference="season", **TINY_TASK)
    with pytest.raises(ValueError, match="window >= season >= horizon"):
        many_to_many.build_model(data, TrainSettings(output_dir="unused"))


def seasonal_values(count, season, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    steps = np.arange(count)
    return 10 + 3 * np.sin(2 * np.pi * steps / season) + noise * rng.standard_normal(count)


def test_date_spread_over_columns_after_an_index_column(tmp_path):
    start = np.datetime64("2021-03-01T00")
    rows = []
    for i, value in enumerate(seasonal_values(24 * 12, 24)):
        stamp = (start + np.timedelta64(i, "h")).astype(object)
        rows.append((i + 1, stamp.year, stamp.month, stamp.day, stamp.hour, round(value, 3)))
    path = write_csv(tmp_path / "hourly.csv", ["No", "year", "month", "day", "hour", "load"], rows)
    data = Forecasting().load_data(str(path))
    assert data.series.columns == ["load"]  # index and date parts are not features
    assert data.dates[:2] == ["2021-03-01 00:00:00", "2021-03-01 01:00:00"]
    assert data.season == 24  # hourly data with a daily cycle
    assert (data.window, data.horizon) == (48, 7)  # the window spans two seasons


def test_year_column_alone_and_undated_rows_with_freq(tmp_path):
    values = seasonal_values(120, 11, noise=0.05)
    path = write_csv(
        tmp_path / "yearly.csv",
        ["YEAR", "activity"],
        [(1800.0 + i, v) for i, v in enumerate(values)],
    )
    data = Forecasting().load_data(str(path))
    assert data.dates[0] == "1800.0" and data.series.timestamps[1].year == 1801
    assert data.season == 11  # no calendar season: the autocorrelation peak
    undated = write_csv(tmp_path / "undated.csv", ["reading"], [(v,) for v in values])
    data = Forecasting(freq="YS").load_data(str(undated))
    assert data.series.timestamps is None and data.series.spacing == 365
    assert data.season == 11
    semicolons = tmp_path / "semicolons.csv"
    semicolons.write_text(
        "date;value\n" + "".join(f"2020-01-{d:02d};{d % 3}\n" for d in range(1, 31))
    )
    assert Forecasting(window=3, horizon=1).load_data(str(semicolons)).values[:3, 0].tolist() == [
        1,
        2,
        0,
    ]


def test_several_targets_and_numeric_features(tmp_path):
    values = seasonal_values(96, 12)
    rows = [
        (f"{2000 + i // 12}-{i % 12 + 1:02d}", v, 2 * v + 1, i % 5, 100 + i)
        for i, v in enumerate(values)
    ]
    path = write_csv(tmp_path / "multi.csv", ["month", "a", "b", "c", "d"], rows)
    data = Forecasting(target="a,b", **TINY_TASK).load_data(str(path))
    assert data.series.columns == ["a", "b", "c", "d"]  # every other numeric column
    n_train = data.validation_start
    np.testing.assert_allclose(data.mean, data.table[:n_train].mean(axis=0))
    np.testing.assert_allclose(data.std, data.table[:n_train].std(axis=0))
    assert data.targets("test").shape == (len(data.test_origins), 3, 2)
    only_c = Forecasting(target=["a", "b"], features="c", **TINY_TASK).load_data(str(path))
    assert only_c.series.columns == ["a", "b", "c"]
    alone = Forecasting(target="b", features="", **TINY_TASK).load_data(str(path))
    assert alone.series.columns == ["b"]
    task = Forecasting(target="a,b", **TINY_TASK)
    model = task.inference_model(task.build_model(data, TrainSettings(units=4, output_dir="x")))
    length = data.max_length if task.model_reference(data) == "season" else data.window
    assert model.input_shape == (None, length, 4) and model.output_shape == (None, 3, 2)
    metrics = task.evaluate(model, data)
    assert {"mae_a", "mae_b"} <= set(metrics)
    assert metrics["mae"] == pytest.approx((metrics["mae_a"] + metrics["mae_b"]) / 2, rel=1e-5)


def test_categorical_feature_is_one_hot_with_training_categories(tmp_path):
    kinds = ["rain", "sun", "fog"]
    rows = [
        (
            str(np.datetime64("2020-01-01") + np.timedelta64(i, "D")),
            v,
            kinds[i % 3] if i < 70 else "snow",
        )
        for i, v in enumerate(seasonal_values(100, 7))
    ]
    path = write_csv(tmp_path / "weather.csv", ["date", "temp", "weather"], rows)
    assert Forecasting().load_data(str(path)).series.columns == ["temp"]  # numeric only by default
    data = Forecasting(features="weather", **TINY_TASK).load_data(str(path))
    assert data.series.columns == ["temp", "weather=fog", "weather=rain", "weather=sun"]
    np.testing.assert_array_equal(data.table[:3, 1:], [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(data.table[80, 1:], [0, 0, 0])  # "snow" only after training


def test_short_daily_series_falls_back_to_a_shorter_season_or_none(tmp_path):
    dates = [np.datetime64("2021-01-01") + np.timedelta64(i, "D") for i in range(365)]
    weekly = seasonal_values(365, 7)
    path = write_csv(
        tmp_path / "year.csv", ["date", "v"], zip(map(str, dates), weekly, strict=True)
    )
    data = Forecasting().load_data(str(path))
    assert data.season == 7 and data.horizon == 3  # 365 does not fit in 255 training days
    rng = np.random.default_rng(1)
    noise = write_csv(
        tmp_path / "noise.csv",
        ["date", "v"],
        zip(map(str, dates), rng.normal(size=365), strict=True),
    )
    data = Forecasting().load_data(str(noise))
    assert data.season is None and data.horizon == 1
    assert set(Forecasting().baselines(data)) == {"persistence"}


def test_the_model_starts_at_the_baseline_that_does_best_on_validation(tmp_path):
    rng = np.random.default_rng(0)
    dates = [str(np.datetime64("2000-01") + np.timedelta64(i, "M")) for i in range(240)]
    layouts = {
        "season": seasonal_values(240, 12, noise=0.2),
        "last": np.cumsum(rng.normal(size=240)),  # a random walk
        "none": rng.normal(size=240),  # noise around a constant mean
    }
    for expected, values in layouts.items():
        path = write_csv(
            tmp_path / f"{expected}.csv", ["month", "v"], zip(dates, values, strict=True)
        )
        task = Forecasting(**TINY_TASK)
        data = task.load_data(str(path))
        errors = task.baseline_errors(data)
        assert task.model_reference(data) == expected == min(errors, key=errors.get)
        model = task.inference_model(task.build_model(data, TrainSettings(units=4, output_dir="x")))
        forecasts = forecasting.forecast(model, data.inputs("test", model.input_shape[1]))
        baseline = {
            "season": data.seasonal_naive("test"),
            "last": data.persistence("test"),
            "none": data.training_mean("test"),
        }[expected]
        np.testing.assert_allclose(forecasts, baseline, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("fraction", "kept"),
    [(1.0, 1.0), (0.7, 1.0), (0.0, 0.0), (0.3, 0.0), (0.502, 0.0)],
)
def test_the_correction_is_kept_only_where_it_saves_on_validation(fraction, kept):
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="change")(inputs))
    model.compile(loss="mse", metrics=["mae"])
    trained = [np.array([[2.0]], "float32"), np.array([1.0], "float32")]
    model.get_layer("change").set_weights(trained)
    x = np.linspace(-1, 1, 40)[:, None]
    # Targets a fraction of the trained correction: with 0.502 the whole
    # correction does best but saves less than 1% of the MAE, so the
    # baseline is kept.
    targets = fraction * (2 * x + 1)
    keeper = forecasting.KeepBestStart(
        tf_dataset(x.astype("float32"), targets.astype("float32")), metric="mae"
    )
    keeper.set_model(model)
    keeper.on_train_end()
    assert keeper.scale == kept and set(keeper.errors) == set(forecasting.CORRECTION_SCALES)
    weights = model.get_layer("change").get_weights()
    np.testing.assert_allclose(weights[0], trained[0] * kept)
    np.testing.assert_allclose(weights[1], trained[1] * kept)


def tf_dataset(x, y):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


def test_training_that_only_hurts_keeps_the_baseline(tmp_path):
    task = Forecasting(reference="last", **TINY_TASK)
    settings = tiny_settings(tmp_path, learning_rate=30.0, clipnorm=None)
    result = task.train(settings, source="airline-passengers")
    data = task.load_data("airline-passengers")
    np.testing.assert_allclose(
        forecasting.forecast(result.model, data.inputs("test")), data.persistence("test"), rtol=1e-5
    )


def test_train_writes_the_forecast_plot_and_says_when_a_baseline_wins(tmp_path, capsys):
    from keras_seqcells import cli

    output = tmp_path / "run"
    argv = ["train", "forecasting", "--source", "airline-passengers", "--units", "4"]
    argv += ["--epochs", "1", "--output-dir", str(output), "--quiet", "--task-option", "window=8"]
    argv += ["--task-option", "horizon=3", "--task-option", "reference=none"]
    assert cli.main(argv) == 0
    assert (output / "forecast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    summary = json.loads((output / "metrics.json").read_text())
    assert summary["reference"] == "none" and summary["season"] == 12
    # One epoch from the training mean cannot follow a trend: the baselines win.
    sentence = "The model does worse than seasonal naive (season=12) on the held-out part"
    assert summary["verdict"].startswith(sentence)
    assert sentence in printed and f"forecast plot: {output / 'forecast.png'}" in printed
    assert (
        cli.main(
            [
                "evaluate",
                "forecasting",
                "--model",
                str(output / "model.keras"),
                "--source",
                "airline-passengers",
                "--task-option",
                "window=8",
                "--task-option",
                "horizon=3",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.count(sentence) == 1
    good = {"mae": 1.0}
    assert Forecasting().verdict(good, {"persistence": {"mae": 2.0}}) is None


def test_predict_on_a_csv_gives_the_next_values_with_their_dates(tmp_path):
    path = write_csv(tmp_path / "sales.csv", ["id", "month", "sales"], monthly_rows(72))
    task = Forecasting(**TINY_TASK)
    data = task.load_data(str(path))
    model = task.inference_model(task.build_model(data, TrainSettings(units=4, output_dir="x")))
    (result,) = task.predict(model, [str(path)])
    assert [row["month"] if "month" in row else row["date"] for row in result] == [
        "2006-01-01",
        "2006-02-01",
        "2006-03-01",
    ]
    expected = forecasting.forecast(model, data.table[None, -model.input_shape[1] :])[0]
    np.testing.assert_allclose([row["sales"] for row in result], expected, rtol=1e-6)
    undated = write_csv(
        tmp_path / "undated.csv", ["sales"], [(row[2],) for row in monthly_rows(72)]
    )
    (result,) = task.predict(model, [str(undated)])
    assert [row["step"] for row in result] == [72, 73, 74]
    wide = write_csv(
        tmp_path / "wide.csv", ["month", "sales", "ads"], [(*r[1:], 1.0) for r in monthly_rows(72)]
    )
    with pytest.raises(DataError, match=r"Expected 1 model input column\(s\) .* Received: 2"):
        task.predict(model, [str(wide)])
    with pytest.raises(DataError, match="existing file"):
        task.predict(model, [str(tmp_path / "absent.csv")])


def test_bad_options_and_files_are_clear_errors(tmp_path):
    for options, message in [
        ({"value_column": "sales"}, r"`value_column` is its former name\. Received: "),
        ({"freq": "fortnightly"}, r"pandas frequency .* Received: freq='fortnightly'"),
        ({"target": 3}, r"Expected `target` to be column names"),
        ({"features": {"a": 1}}, r"Expected `features` to be column names"),
    ]:
        with pytest.raises(ValueError, match=message):
            Forecasting(**options)
    path = write_csv(
        tmp_path / "s.csv", ["month", "a", "b"], [(*r[1:], 1.0) for r in monthly_rows(72)]
    )
    with pytest.raises(ValueError, match=r"different columns\. Received: \['a'\] in both"):
        Forecasting(target="a", features="a,b").load_data(str(path))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("date,v\n2020-01-01,1\n2020-01-02,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"UTF-8 .* Received: .*latin\.csv .* on line 3"):
        Forecasting().load_data(str(latin))
    with pytest.raises(ValueError, match="a season at least as long as the horizon"):
        noise = write_csv(
            tmp_path / "n.csv", ["v"], [(v,) for v in np.random.default_rng(0).normal(size=60)]
        )
        task = Forecasting(reference="season", **TINY_TASK)
        task.build_model(task.load_data(str(noise)), TrainSettings(output_dir="x"))


# The default reference (a baseline added after the recurrent layer: no `step`
# signature), and the recurrent layer's own forecast (a `step` signature fed one
# row of every column per step).
@pytest.mark.parametrize("reference", [None, "none"])
def test_multivariate_forecaster_exports_and_answers_after_loading(
    reference, tmp_path, monkeypatch
):
    import tensorflow as tf

    import keras_seqcells

    path = weather_csv(tmp_path)
    task = Forecasting(target="temp", features="wind,weather", reference=reference, **TINY_TASK)
    data = task.load_data(str(path))
    keras.utils.set_random_seed(0)
    model = task.inference_model(task.build_model(data, TrainSettings(units=4, output_dir="x")))
    change = model.get_layer("change")  # a correction, so the answers are not the baseline's
    change.set_weights(
        [0.1 * np.random.default_rng(0).standard_normal(w.shape) for w in change.get_weights()]
    )
    monkeypatch.chdir(tmp_path)
    exported = keras_seqcells.export(model, "saved_models/forecaster", xla=False)
    report = keras_seqcells.serving.serve_check(
        "saved_models/forecaster", model=model, fresh_process=False
    )
    assert report[-1] == "serving_default: the Keras model's answers"
    assert any(line.startswith("step:") for line in report) == (reference == "none")
    serve = tf.saved_model.load(str(exported)).signatures["serving_default"]
    windows = data.inputs("test", model.inputs[0].shape[1])
    assert windows.shape[2] == 5  # temp, wind and the three one-hot weather columns
    expected = forecasting.forecast(model, windows)
    np.testing.assert_allclose(serve(window=tf.constant(windows))["forecast"], expected, rtol=1e-5)
    assert not np.allclose(expected, data.persistence("test"))
