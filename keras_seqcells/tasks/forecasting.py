"""Time-series forecasting (many-to-one or many-to-many) with multi-step horizons.

Data: the series shipped with the package (`daily-min-temperatures`, the
default, and `airline-passengers`) or any CSV file with a date column and a
value column. The split is chronological: the last 20% of the series is the
held-out test tail and the 10% before it is the validation part. Each example
is a window of `window` past values and the `horizon` values that follow it;
an example belongs to the split holding all of its targets (its inputs may
reach back into the parts before). Normalisation uses the mean and standard
deviation of the training part only.

The model takes float32 windows of shape `(batch, window, 1)` and returns
`(batch, horizon)` forecasts in the series' own units: the normalisation and
its inverse are `Rescaling` layers inside the model, so a saved or exported
model needs no separate preprocessing, and it is built from Keras's built-in
layers and the keras_seqcells layers only (it loads with `safe_mode=True`).
The recurrent layer predicts a correction to a reference forecast:

- `reference="none"`: the forecast itself, from the normalised window;
- `reference="last"`: the change from the last value of the window;
- `reference="season"`: the change from the values one season earlier
  (needs `window >= season` and `horizon <= season`).

With a reference, the recurrent layer reads the window relative to its first
value, so the model does not depend on the level of the series (which matters
for series with a trend, whose test tail lies beyond the training range).

Held-out MAE (over all forecast steps of every test window, in the series'
units) with the recommended settings (32 units, Adam at 3e-3, at most 40
epochs with early stopping after 5 without improvement, seed 0) and the
default window, horizon and reference of each shipped series:

| held-out MAE               | daily-min-temperatures (°C) | airline-passengers (thousands) |
|----------------------------|-----------------------------|--------------------------------|
| window, horizon, reference | 30, 7, none                 | 24, 6, season                  |
| GRU (recommended)          | 2.008                       | 20.86                          |
| LSTM                       | 2.026                       | 20.87                          |
| SimpleRNN                  | 2.045                       | 21.57                          |
| GRU, many-to-many          | 2.010                       | 16.03                          |
| persistence                | 2.624                       | 83.39                          |
| seasonal naive             | 2.973 (season 365)          | 44.48 (season 12)              |

The GRU's RMSE is 2.597 (baselines 3.321 and 3.736) and 23.54 (baselines
101.6 and 48.59); with seeds 1 and 2 its MAE is 2.004 and 2.020, and 20.19
and 19.49. Training the GRU took 21 epochs in 26-32 s on the daily series and
11 epochs in 7-9 s on the monthly one (2 CPU cores shared with other work).
"""

import csv
import dataclasses
import datetime
import math

import keras
import numpy as np
import tensorflow as tf

from keras_seqcells.cells.base import check_rate
from keras_seqcells.tasks.base import Task, recurrent_layer
from keras_seqcells.tasks.data import DataError, read_text, shipped_path

#: Shipped series: file name and seasonality period (in steps of the series).
SHIPPED = {
    "daily-min-temperatures": ("daily-min-temperatures.csv", 365),
    "airline-passengers": ("airline-passengers.csv", 12),
}
MODES = ("many_to_one", "many_to_many")
REFERENCES = ("none", "last", "season")
LOSSES = ("mse", "mae")
#: How missing values of a CSV series are handled (None: refused).
FILLS = (None, "previous", "linear")
#: Cells of a CSV value column that count as missing values.
MISSING = ("", "nan", "na", "n/a", "null", "none", "?")
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
DATE_FORMATS = ("%Y-%m-%d", "%Y-%m", "%Y/%m/%d", "%Y/%m", "%Y-%m-%d %H:%M:%S")
#: Median spacing of the dates, in days, and the seasonality period it implies.
SPACINGS = (((1, 1), 365), ((7, 7), 52), ((28, 31), 12), ((89, 92), 4))


@dataclasses.dataclass
class SeriesData:
    """A series, its chronological split and its forecasting windows.

    Windows are given by their origins: the index `t` of the last value of
    the window. The window is `values[t - window + 1 : t + 1]` and its
    targets are `values[t + 1 : t + horizon + 1]`.

    Args:
        source: The series' name or path.
        dates: The date of each value, as written in the file.
        values: The whole series (float64).
        window: Past values in each window.
        horizon: Values forecast after each window.
        season: Seasonality period, in steps of the series.
        validation_start: Index of the first validation value.
        test_start: Index of the first value of the held-out test tail.
        mean: Mean of the training part.
        std: Standard deviation of the training part.
        train_origins: Origins of the training windows.
        validation_origins: Origins of the validation windows.
        test_origins: Origins of the test windows.
    """

    source: str
    dates: list
    values: np.ndarray
    window: int
    horizon: int
    season: int
    validation_start: int
    test_start: int
    mean: float
    std: float
    train_origins: np.ndarray
    validation_origins: np.ndarray
    test_origins: np.ndarray

    def origins(self, split):
        if split not in ("train", "validation", "test"):
            raise ValueError(
                "Expected `split` to be one of ['test', 'train', 'validation']. "
                f"Received: split={split!r}"
            )
        return getattr(self, f"{split}_origins")

    def inputs(self, split):
        """The windows of `split`, float32 of shape `(examples, window, 1)`."""
        offsets = np.arange(-self.window + 1, 1)
        return self.values[self.origins(split)[:, None] + offsets][..., None].astype("float32")

    def targets(self, split):
        """The values after each window of `split`, shape `(examples, horizon)`."""
        offsets = np.arange(1, self.horizon + 1)
        return self.values[self.origins(split)[:, None] + offsets].astype("float32")

    def step_targets(self, split):
        """The `horizon` values after every step of each window of `split`.

        Returns:
            float32 of shape `(examples, window, horizon)`; the last step's
            targets are `targets(split)`.
        """
        steps = np.arange(-self.window + 1, 1)[:, None] + np.arange(1, self.horizon + 1)
        return self.values[self.origins(split)[:, None, None] + steps].astype("float32")

    def persistence(self, split):
        """The last value of each window, repeated over the horizon."""
        last = self.values[self.origins(split)]
        return np.repeat(last[:, None], self.horizon, axis=1)

    def seasonal_naive(self, split):
        """For each target, the latest value a whole number of seasons earlier."""
        steps = np.arange(1, self.horizon + 1)
        lags = self.season * np.ceil(steps / self.season).astype(int)
        return self.values[self.origins(split)[:, None] + steps - lags]


def split_sizes(n):
    """Sizes of the training part, the validation part and the test tail of `n` values."""
    n_test = round(n * TEST_FRACTION)
    n_validation = round(n * VALIDATION_FRACTION)
    return n - n_test - n_validation, n_validation, n_test


def split_fits(n, window, horizon):
    """Whether `n` values give every split at least one window."""
    n_train, n_validation, n_test = split_sizes(n)
    return min(n_validation, n_test) >= horizon and n_train >= window + horizon


def parse_date(text):
    for date_format in DATE_FORMATS:
        try:
            return datetime.datetime.strptime(text, date_format)
        except ValueError:
            continue
    return None


def infer_season(dates):
    """Seasonality period implied by the median spacing of `dates` (None if unknown)."""
    parsed = [parse_date(date) for date in dates]
    if len(parsed) < 2 or any(date is None for date in parsed):
        return None
    days = np.array([(date - parsed[0]).total_seconds() for date in parsed]) / 86400
    spacing = np.median(np.diff(days))
    for (low, high), season in SPACINGS:
        if low <= spacing <= high:
            return season
    return None


def check_chronological(dates, path):
    """Raises a `DataError` if parseable `dates` are not strictly increasing."""
    parsed = [parse_date(date) for date in dates]
    if any(date is None for date in parsed):
        return
    for row in range(1, len(parsed)):
        if parsed[row] <= parsed[row - 1]:
            raise DataError(
                f"Expected the rows of `source` in chronological order. Received: {path} "
                f"(data row {row + 1} dated {dates[row]!r} follows {dates[row - 1]!r})"
            )


def _column_index(header, column, argument, default, path):
    if column is None:
        if len(header) <= default:
            raise DataError(
                f"Expected `source` to have a date column and a value column. Received: "
                f"{path} with header {header}"
            )
        return default
    if column not in header:
        raise DataError(
            f"Expected `{argument}` to name a column of the CSV header. Received: "
            f"{argument}={column!r} (header of {path}: {header})"
        )
    return header.index(column)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def fill_missing(values, fill):
    """`values` (float64, NaN where missing) with the gaps filled by `fill`.

    `"previous"` repeats the last value before a gap (the first value after
    it for a gap at the start); `"linear"` interpolates between the values
    around a gap (and repeats the nearest value at either end).
    """
    missing = np.isnan(values)
    if missing.all():
        raise DataError("Expected at least one value in the value column. Received: none")
    if not missing.any():
        return values
    present = np.flatnonzero(~missing)
    if fill == "linear":
        return np.interp(np.arange(len(values)), present, values[present])
    # "previous": index of the latest present value at or before each position.
    latest = np.maximum.accumulate(np.where(missing, -1, np.arange(len(values))))
    latest = np.where(latest < 0, present[0], latest)
    return values[latest]


def read_series_csv(path, date_column=None, value_column=None, fill=None):
    """Reads a date column and a numeric value column from a CSV file with a header.

    Args:
        path: The CSV file.
        date_column: Name of the date column; the first column by default.
        value_column: Name of the value column; the second column by default.
        fill: What to do with missing values (an empty cell, `nan`, `NA`,
            `null` or `?`): None (the default) refuses them, `"previous"`
            repeats the last value before each gap and `"linear"`
            interpolates across it. Infinities and other non-numeric values
            are always refused.

    Returns:
        `(dates, values)`: a list of str and a float64 NumPy array.

    Raises:
        DataError: the file is missing, unreadable or empty, a named column
            is not in the header, a value is missing (without `fill`) or a
            value is not a finite number.
    """
    if fill not in FILLS:
        raise ValueError(f"Expected `fill` to be one of {list(FILLS)}. Received: fill={fill!r}")
    text = read_text(path, "source").lstrip("\ufeff")
    rows = [
        (line, [cell.strip() for cell in row])
        for line, row in enumerate(csv.reader(text.splitlines()), start=1)
        if any(cell.strip() for cell in row)
    ]
    if not rows:
        raise DataError(
            f"Expected `source` to be a CSV file with a header row and data rows. "
            f"Received: {path} (empty)"
        )
    (_, header), rows = rows[0], rows[1:]
    if any(_is_number(cell) or parse_date(cell) for cell in header):
        raise DataError(
            "Expected `source` to start with a header row naming its columns. Received: "
            f"{path} whose first row {header} holds data"
        )
    date_index = _column_index(header, date_column, "date_column", 0, path)
    value_index = _column_index(header, value_column, "value_column", 1, path)
    value_name = header[value_index]
    dates, values = [], []
    for line, row in rows:
        if len(row) <= max(date_index, value_index):
            raise DataError(
                f"Expected {len(header)} columns in every row of `source` ({header}). "
                f"Received: line {line} of {path}: {row}"
            )
        text = row[value_index]
        if text.lower() in MISSING:
            if fill is None:
                raise DataError(
                    f"Expected a value in every row of the value column {value_name!r}, or "
                    f"a `fill` ({', '.join(FILLS[1:])}) for missing ones. Received: {text!r} "
                    f"on line {line} of {path}"
                )
            value = math.nan
        else:
            try:
                value = float(text)
            except ValueError:
                value = math.inf
            if not math.isfinite(value):
                raise DataError(
                    f"Expected finite numbers in the value column {value_name!r}. Received: "
                    f"{text!r} on line {line} of {path}"
                )
        dates.append(row[date_index])
        values.append(value)
    if not values:
        raise DataError(
            f"Expected data rows below the header of `source`. Received: {path} "
            f"(header {header} only)"
        )
    values = np.array(values, dtype="float64")
    if np.isnan(values).all():
        raise DataError(
            f"Expected at least one value in the value column {value_name!r}. Received: "
            f"{path} (all {len(values)} value(s) missing)"
        )
    return dates, fill_missing(values, fill)


class Forecasting(Task):
    """Multi-step forecasts of a univariate time series from its recent past.

    Args:
        window: Past values the model reads. By default `2 * season`, at most
            30 and at most what the training part allows (30 for daily
            data, 24 for monthly data).
        horizon: Values forecast after each window. By default `season // 2`,
            at most 7 (7 for daily data, 6 for monthly data).
        season: Seasonality period in steps of the series (for the
            seasonal-naive baseline and `reference="season"`): 365 for
            `daily-min-temperatures`, 12 for `airline-passengers`, and for a
            CSV file inferred from the spacing of its dates (daily: 365,
            weekly: 52, monthly: 12, quarterly: 4); other files must give it.
        mode: `"many_to_one"` (the forecast comes from the final state) or
            `"many_to_many"` (the model forecasts the next `horizon` values
            at every step, is trained on all steps and evaluated on the last).
        reference: What the recurrent layer corrects: `"none"`, `"last"` or
            `"season"` (see the module docstring); by default `"season"`
            when the window covers a season and `"none"` otherwise.
        loss: `"mse"` or `"mae"`, on normalised values.
        dropout: Dropout of the recurrent layer's inputs.
        date_column: Name of the date column of a CSV source (the first
            column by default).
        value_column: Name of the value column of a CSV source (the second
            column by default).
        fill: Missing values in a CSV source (empty cells, `nan`, `NA`...)
            are refused by default; `"previous"` repeats the last value
            before each gap and `"linear"` interpolates across it (see
            `read_series_csv`).
        min_epoch_windows: An epoch covers the training windows repeated
            until there are at least this many, so short series get as many
            updates per epoch as long ones.

    Example:

    >>> task = Forecasting(window=24, horizon=6)
    >>> data = task.load_data("airline-passengers")
    >>> data.inputs("test").shape, data.targets("test").shape
    ((24, 24, 1), (24, 6))
    """

    name = "forecasting"
    metric = "mae"
    lower_is_better = True
    default_source = "daily-min-temperatures"
    recommended_settings = {
        "cell": "gru",
        "units": 32,
        "epochs": 40,
        "batch_size": 64,
        "learning_rate": 3e-3,
        "patience": 5,
    }

    def __init__(
        self,
        window=None,
        horizon=None,
        season=None,
        mode="many_to_one",
        reference=None,
        loss="mse",
        dropout=0.0,
        date_column=None,
        value_column=None,
        min_epoch_windows=1024,
        fill=None,
    ):
        for name, value in (
            ("window", window),
            ("horizon", horizon),
            ("season", season),
            ("min_epoch_windows", min_epoch_windows),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value <= 0
            ):
                raise ValueError(
                    f"Expected `{name}` to be a positive integer. Received: {name}={value!r}"
                )
        if window is not None and window < 2:
            raise ValueError(f"Expected `window` to be at least 2. Received: window={window}")
        for name, value, choices in (
            ("mode", mode, MODES),
            ("reference", reference, (None, *REFERENCES)),
            ("loss", loss, LOSSES),
            ("fill", fill, FILLS),
        ):
            if value not in choices:
                raise ValueError(
                    f"Expected `{name}` to be one of {list(choices)}. Received: {name}={value!r}"
                )
        check_rate("dropout", dropout)
        self.window = window
        self.horizon = horizon
        self.season = season
        self.mode = mode
        self.reference = reference
        self.loss = loss
        self.dropout = dropout
        self.date_column = date_column
        self.value_column = value_column
        self.min_epoch_windows = min_epoch_windows
        self.fill = fill

    def read_series(self, source=None):
        """Reads a series: `(dates, values, season)` for a shipped name or a CSV path."""
        source = source or self.default_source
        if source in SHIPPED:
            file_name, season = SHIPPED[source]
            dates, values = read_series_csv(shipped_path("timeseries", file_name))
        else:
            dates, values = read_series_csv(
                source, self.date_column, self.value_column, fill=self.fill
            )
            check_chronological(dates, source)
            season = infer_season(dates)
        season = self.season or season
        if season is None:
            raise DataError(
                "Expected dates spaced by a day, a week, a month or a quarter in `source`, "
                f"or a `season`. Received: {source} (dates {dates[:3]}...) and season=None"
            )
        return dates, values, season

    def load_data(self, source=None, seed=0, limit=None):
        """Loads a series and splits it chronologically: 70% train, 10% validation, 20% test.

        Args:
            source: `"daily-min-temperatures"` (shipped, the default),
                `"airline-passengers"` (shipped), or the path of a CSV file
                with a header, a date column and a value column.
            seed: Unused (the split is chronological); accepted for the
                common task interface.
            limit: Optional number of windows to keep per split (the first
                ones), for quick runs.

        Returns:
            A `SeriesData`.
        """
        del seed
        source = str(source or self.default_source)
        dates, values, season = self.read_series(source)
        horizon = self.horizon or max(1, min(7, season // 2))
        n = len(values)
        n_train, n_validation, _ = split_sizes(n)
        validation_start = n_train
        test_start = n_train + n_validation
        window = self.window or max(2, min(30, 2 * season, validation_start - horizon))
        if not split_fits(n, window, horizon):
            minimum = next(
                m
                for m in range(n + 1, n + 10 * (window + horizon) + 10)
                if split_fits(m, window, horizon)
            )
            raise DataError(
                f"Expected a series of at least {minimum} values for window={window} and "
                f"horizon={horizon} (70% train, 10% validation, 20% test). Received: "
                f"{n} value(s) in {source}"
            )
        if test_start < season:
            raise DataError(
                f"Expected at least one season (season={season}) before the test tail for "
                f"the seasonal-naive baseline. Received: {n} value(s) in {source}, test tail "
                f"starting at value {test_start}; pass a smaller `season`"
            )
        training = values[:validation_start]
        std = float(np.std(training))
        if std == 0.0:
            raise DataError(
                f"Expected a series that varies over its training part. Received: {source} "
                f"(constant {training[0]})"
            )

        def origins(first_target, end):
            origin_range = np.arange(max(first_target - 1, window - 1), end - horizon)
            return origin_range if limit is None else origin_range[:limit]

        return SeriesData(
            source=source,
            dates=dates,
            values=values,
            window=window,
            horizon=horizon,
            season=season,
            validation_start=validation_start,
            test_start=test_start,
            mean=float(np.mean(training)),
            std=std,
            train_origins=origins(0, validation_start),
            validation_origins=origins(validation_start, test_start),
            test_origins=origins(test_start, n),
        )

    def model_reference(self, data):
        if self.reference is not None:
            reference = self.reference
        else:
            reference = "season" if data.window >= data.season >= data.horizon else "none"
        if reference == "season" and not data.window >= data.season >= data.horizon:
            raise ValueError(
                'Expected `window >= season >= horizon` for reference="season". Received: '
                f"window={data.window}, season={data.season}, horizon={data.horizon}"
            )
        return reference

    def build_model(self, data, settings):
        """The forecasting model for `data`'s window and horizon (see the module docstring).

        Returns:
            A `keras.Model` from `(batch, window, 1)` float32 windows to
            `(batch, horizon)` forecasts in the series' units. In
            `"many_to_many"` mode its outputs are a dict: `"forecast"` and
            `"steps"`, the `(batch, steps, horizon)` forecasts after every
            step (`train` saves the forecast alone).
        """
        window, horizon, season = data.window, data.horizon, data.season
        reference = self.model_reference(data)
        many_to_many = self.mode == "many_to_many"
        layers = keras.layers
        inputs = keras.Input((window, 1), dtype="float32", name="window")
        z = layers.Rescaling(1.0 / data.std, -data.mean / data.std, name="normalize")(inputs)
        if reference == "none":
            sequence = z
        else:
            first = layers.Cropping1D((0, window - 1), name="first_value")(z)
            sequence = layers.Subtract(name="relative_to_first")([z, first])
        encoder = recurrent_layer(
            settings.cell,
            settings.units,
            dropout=self.dropout,
            return_sequences=many_to_many,
            seed=settings.seed,
            name="encoder",
        )(sequence)
        if many_to_many:
            # Steps whose reference lies inside the window: all of them, or
            # those after the first season with reference="season".
            skipped = season - 1 if reference == "season" else 0
            if skipped:
                encoder = layers.Cropping1D((skipped, 0), name="steps_with_reference")(encoder)
            change = layers.TimeDistributed(layers.Dense(horizon), name="change")(encoder)
            if reference == "last":
                change = layers.Add(name="plus_reference")([z, change])
            elif reference == "season":
                earlier = [
                    layers.Cropping1D((k - 1, season - k), name=f"season_ago_{k}")(z)
                    for k in range(1, horizon + 1)
                ]
                if horizon > 1:
                    earlier = layers.Concatenate(name="seasonal_reference")(earlier)
                else:
                    earlier = earlier[0]
                change = layers.Add(name="plus_reference")([earlier, change])
            steps = layers.Rescaling(data.std, data.mean, name="steps")(change)
            last = layers.Cropping1D((window - skipped - 1, 0), name="last_step")(steps)
            forecast = layers.Flatten(name="forecast")(last)
            outputs = {"forecast": forecast, "steps": steps}
        else:
            change = layers.Dense(horizon, name="change")(encoder)
            if reference == "last":
                last = layers.Cropping1D((window - 1, 0), name="last_value")(z)
                change = layers.Add(name="plus_reference")([layers.Flatten()(last), change])
            elif reference == "season":
                earlier = layers.Cropping1D((window - season, season - horizon), name="season_ago")(
                    z
                )
                change = layers.Add(name="plus_reference")([layers.Flatten()(earlier), change])
            outputs = layers.Rescaling(data.std, data.mean, name="forecast")(change)
        return keras.Model(inputs, outputs, name=f"forecaster_{settings.cell}")

    def compile(self, model, settings):
        # The loss weight makes the loss that of normalised values while the
        # outputs (and the MAE metric) stay in the series' units.
        std = float(model.get_layer("normalize").scale) ** -1
        weight = std**-2 if self.loss == "mse" else 1.0 / std
        if isinstance(model.output, dict):
            model.compile(
                optimizer=settings.optimizer(),
                loss={"steps": self.loss, "forecast": None},
                loss_weights={"steps": weight, "forecast": None},
                metrics={"forecast": ["mae"]},
            )
        else:
            model.compile(
                optimizer=settings.optimizer(),
                loss=self.loss,
                loss_weights=[weight],
                metrics=["mae"],
            )

    def datasets(self, data, batch_size):
        def dataset(split, shuffle):
            inputs = data.inputs(split)
            targets = data.targets(split)
            if self.mode == "many_to_many":
                steps = data.step_targets(split)
                if self.model_reference(data) == "season":
                    steps = steps[:, data.season - 1 :]
                targets = {"forecast": targets, "steps": steps}
            ds = tf.data.Dataset.from_tensor_slices((inputs, targets))
            if shuffle:
                repeats = math.ceil(self.min_epoch_windows / len(inputs))
                ds = ds.shuffle(len(inputs), seed=0, reshuffle_each_iteration=True)
                ds = ds.repeat(repeats)
            return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

        return dataset("train", shuffle=True), dataset("validation", shuffle=False)

    def inference_model(self, model):
        """In `"many_to_many"` mode, the `"forecast"` output alone: windows to
        `(batch, horizon)` forecasts."""
        return forecast_model(model) if isinstance(model.output, dict) else model

    def evaluate(self, model, data):
        """MAE and RMSE of the forecasts over all steps of the test windows (series' units)."""
        forecasts = forecast(model, data.inputs("test"))
        metrics = error_metrics(forecasts, data.targets("test"))
        errors = np.abs(forecasts - data.targets("test")).mean(axis=0)
        metrics["mae_first_step"] = float(errors[0])
        metrics[f"mae_step_{data.horizon}"] = float(errors[-1])
        metrics["test_windows"] = len(data.test_origins)
        return metrics

    def baselines(self, data):
        targets = data.targets("test")
        return {
            "persistence": error_metrics(data.persistence("test"), targets),
            f"seasonal naive (season={data.season})": error_metrics(
                data.seasonal_naive("test"), targets
            ),
        }

    def predict(self, model, inputs):
        """Forecasts after each input: comma-separated past values, oldest first.

        Args:
            model: A forecasting model (its input shape gives the window).
            inputs: A string or strings of at least `window` comma-separated
                numbers; the last `window` of them are used.

        Returns:
            One list of `horizon` floats per input.
        """
        window = model.inputs[0].shape[1]
        windows = np.stack([parse_window(text, window) for text in check_inputs(inputs)])
        return forecast(model, windows[..., None]).tolist()


def check_inputs(inputs):
    if isinstance(inputs, str):
        inputs = [inputs]
    inputs = list(inputs)
    if not inputs or any(not isinstance(text, str) or not text.strip() for text in inputs):
        raise ValueError(
            "Expected one or more non-empty strings of comma-separated numbers. "
            f"Received: inputs={inputs!r}"
        )
    return inputs


def parse_window(text, window):
    """The last `window` values of a string of comma-separated numbers, as float32."""
    values = []
    for cell in text.strip().strip(",").split(","):
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ValueError(
                "Expected `inputs` of comma-separated finite numbers. "
                f"Received: {cell.strip()!r} in {text!r}"
            )
        values.append(value)
    if len(values) < window:
        raise ValueError(
            f"Expected at least {window} comma-separated values (the model's window) in "
            "`inputs`. "
            f"Received: {len(values)} value(s) in {text!r}"
        )
    return np.array(values[-window:], dtype="float32")


def forecast_model(model):
    """The `"forecast"` output of a many-to-many model, as a model of its own."""
    return keras.Model(model.inputs, model.get_layer("forecast").output, name=model.name)


def forecast(model, inputs, batch_size=256):
    """`(examples, horizon)` float64 forecasts of `model` for `(examples, window, 1)` windows."""
    outputs = model.predict(np.asarray(inputs, dtype="float32"), batch_size=batch_size, verbose=0)
    if isinstance(outputs, dict):
        outputs = outputs["forecast"]
    return np.asarray(outputs, dtype="float64")


def error_metrics(forecasts, targets):
    errors = np.asarray(forecasts, dtype="float64") - np.asarray(targets, dtype="float64")
    return {
        "mae": float(np.mean(np.abs(errors))),
        "rmse": float(np.sqrt(np.mean(errors**2))),
    }
