"""Time-series forecasting from the CSV files people have, with multi-step horizons.

Data: the series shipped with the package (`daily-min-temperatures`, the
default, and `airline-passengers`) or any CSV file (`read_table`):

- the date in one column, spread over `year, month[, day[, hour]]` columns,
  in a `year` column alone, or absent (then `freq`, a pandas frequency such
  as `"D"` or `"MS"`, gives the spacing, and predictions are numbered);
- an index column (unnamed, or numbered 0, 1, 2... or 1, 2, 3...) first is
  recognised and skipped;
- one or more target columns (`target`, the first column after the date by
  default) and feature columns (`features`, every other numeric column by
  default); a non-numeric feature column is one-hot encoded;
- missing values (`""`, `nan`, `NA`, `null`, `?`...) refused unless `fill`
  says how to fill them.

The split is chronological: the last 20% of the rows are the held-out test
tail and the 10% before them the validation part. Each example is a window
of past rows and the `horizon` target values that follow it; an example
belongs to the split holding all of its targets. Every column is normalised
with the mean and standard deviation of the training part only.

The model takes float32 windows of shape `(batch, length, columns)` (the
targets first, then the features) and returns `(batch, horizon)` forecasts
(`(batch, horizon, targets)` for several targets) in the series' own units:
the normalisation and its inverse are `Rescaling` layers inside the model, so
a saved or exported model needs no separate preprocessing, and it loads with
`safe_mode=True`. The recurrent layer reads the last `window` rows and its
output is a zero-initialised correction added to a baseline forecast (the
`reference`):

- `"none"`: the training mean;
- `"last"`: persistence, the last value of the window;
- `"season"`: seasonal naive, the values one season earlier (the model's
  input then reaches back a whole season, and the recurrent layer reads each
  window row's change since one season earlier: the changes that a seasonal
  ARIMA model continues. A window that does not reach two rows past the
  season gets a season more input for that, a weekly season of half-hourly
  data included; where the training part is too short for that, it reads
  the rows relative to the last, as with `"last"`).

By default the reference is the baseline with the lowest MAE on the
validation split, so training starts from the strongest simple forecast; the
weights that do best on validation are kept, and the correction is dropped
(the model returned to its start) unless it lowers the validation MAE of
that baseline by 1% (`KeepBestStart`).
The season is inferred from the spacing of the dates (24 or 168 for hourly
data, 365 or 7 for daily, 52 weekly, 12 monthly, 4 quarterly) and kept only
where the training part holds three seasons and the autocorrelation of the
detrended target peaks there (above 0.3 and above its value at half the
lag); without a calendar season the strongest such autocorrelation peak is
taken. A series too short for its calendar season falls back to a shorter
one, or to none.
"""

import csv
import dataclasses
import datetime
import io
import json
import math
import pathlib
import warnings

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from keras_seqcells._checks import check_int_at_least, check_optional_positive_int, check_rate
from keras_seqcells.serving.adapters import TaskModel
from keras_seqcells.tasks.base import Task, dtype_policy_scope, recurrent_layer
from keras_seqcells.tasks.data import DataError, shipped_path
from keras_seqcells.tasks.files import save_figure, write_json_atomically

#: Shipped series, by name: their CSV files.
SHIPPED = {
    "daily-min-temperatures": "daily-min-temperatures.csv",
    "airline-passengers": "airline-passengers.csv",
}
MODES = ("many_to_one", "many_to_many")
REFERENCES = ("none", "last", "season")
LOSSES = ("mse", "mae")
#: How missing values of a CSV series are handled (None: refused).
FILLS = (None, "previous", "linear")
#: Cells of a CSV column that count as missing values.
MISSING = ("", "nan", "na", "n/a", "null", "none", "?")
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
DATE_FORMATS = ("%Y-%m-%d", "%Y-%m", "%Y/%m/%d", "%Y/%m", "%Y-%m-%d %H:%M:%S")
#: Calendar seasons (in steps) to try for a median spacing of the dates (in days).
CALENDAR_SEASONS = (
    ((0.9 / 24, 1.1 / 24), (168, 24)),
    ((0.9, 1.1), (365, 7)),
    ((6.5, 7.5), (52,)),
    ((28, 31), (12,)),
    ((89, 92), (4,)),
)
#: The longest default window that spans two seasons (longer seasons get 30 rows).
LONGEST_SEASONAL_WINDOW = 60
#: Autocorrelation of the detrended target a season must reach at its lag.
MIN_SEASON_CORRELATION = 0.3
#: Seasons the training part must hold for a season to be kept.
SEASONS_IN_TRAINING = 3
#: Relative MAE difference within which the model and a baseline tie.
TIE = 1e-3
#: Names of a first column that is a row index, not data.
INDEX_NAMES = ("", "index", "id", "no", "#", "row")
#: Names of a column that holds the dates, tried before any other.
DATE_NAMES = ("date", "datetime", "time", "timestamp", "ds", "period", "month", "day")


@dataclasses.dataclass
class Series:
    """A table read for forecasting: its columns as the model reads them.

    Args:
        source: The series' name or path.
        dates: The date of each row as text (positions without dates).
        timestamps: The dates as a `pandas.DatetimeIndex`, or None.
        targets: Names of the target columns.
        columns: Names of the model's input columns: the targets, the
            numeric features, then one column per category of each
            categorical feature (`"name=value"`).
        table: float64 `(rows, columns)` values of those columns.
        spacing: The dates' median spacing in days, or None.
    """

    source: str
    dates: list
    timestamps: object
    targets: list
    columns: list
    table: np.ndarray
    spacing: float | None


@dataclasses.dataclass
class SeriesData:
    """A series, its chronological split and its forecasting windows.

    Windows are given by their origins: the index `t` of the last row of the
    window. Its targets are the target values of rows `t + 1 ... t + horizon`.

    Args:
        series: The `Series` read.
        window: Rows the recurrent layer reads.
        horizon: Values forecast after each window.
        season: Seasonality period in rows, or None.
        validation_start: Index of the first validation row.
        test_start: Index of the first row of the held-out test tail.
        mean: Mean of each column over the training part.
        std: Standard deviation of each column over the training part (1
            for a constant feature).
        train_origins: Origins of the training windows.
        validation_origins: Origins of the validation windows.
        test_origins: Origins of the test windows.
        seasonal_length: Rows a model with `reference="season"` reads where
            that is more than `max(window, season)`: a season before each
            window row (see `seasonal_length`), or None.
    """

    series: Series
    window: int
    horizon: int
    season: int | None
    validation_start: int
    test_start: int
    mean: np.ndarray
    std: np.ndarray
    train_origins: np.ndarray
    validation_origins: np.ndarray
    test_origins: np.ndarray
    seasonal_length: int | None = None

    @property
    def source(self):
        return self.series.source

    @property
    def dates(self):
        return self.series.dates

    @property
    def table(self):
        return self.series.table

    @property
    def n_targets(self):
        return len(self.series.targets)

    @property
    def values(self):
        """The target columns, float64 `(rows, targets)`."""
        return self.series.table[:, : self.n_targets]

    @property
    def max_length(self):
        """The longest input a model of this data reads: a window, a season,
        or a window with a season before it."""
        return self.seasonal_length or max(self.window, self.season or 0)

    def origins(self, split):
        if split not in ("train", "validation", "test"):
            raise ValueError(
                "Expected `split` to be one of ['test', 'train', 'validation']. "
                f"Received: split={split!r}"
            )
        return getattr(self, f"{split}_origins")

    def inputs(self, split, length=None):
        """The last `length` rows (the window by default) up to each origin of
        `split`, float32 of shape `(examples, length, columns)`."""
        offsets = np.arange(-(length or self.window) + 1, 1)
        return self.table[self.origins(split)[:, None] + offsets].astype("float32")

    def _shaped(self, values):
        return values[..., 0] if self.n_targets == 1 else values

    def target_values(self, split):
        """The values after each window of `split`, `(examples, horizon, targets)`."""
        offsets = np.arange(1, self.horizon + 1)
        return self.values[self.origins(split)[:, None] + offsets]

    def targets(self, split):
        """What the model answers: `(examples, horizon)` float32, or
        `(examples, horizon, targets)` for several targets."""
        return self._shaped(self.target_values(split)).astype("float32")

    def step_targets(self, split):
        """The `horizon` values after every step of each window of `split`
        (one target): float32 of shape `(examples, window, horizon)`."""
        steps = np.arange(-self.window + 1, 1)[:, None] + np.arange(1, self.horizon + 1)
        return self.values[self.origins(split)[:, None, None] + steps, 0].astype("float32")

    def persistence(self, split):
        """The last value of each window, repeated over the horizon."""
        last = self.values[self.origins(split)]
        return self._shaped(np.repeat(last[:, None], self.horizon, axis=1))

    def seasonal_naive(self, split):
        """For each target, the latest value a whole number of seasons earlier
        (None without a season)."""
        if self.season is None:
            return None
        steps = np.arange(1, self.horizon + 1)
        lags = self.season * np.ceil(steps / self.season).astype(int)
        return self._shaped(self.values[self.origins(split)[:, None] + steps - lags])

    def training_mean(self, split):
        """The training mean of each target, for every window of `split`."""
        shape = (len(self.origins(split)), self.horizon, self.n_targets)
        return self._shaped(np.broadcast_to(self.mean[: self.n_targets], shape))


def default_window(season):
    """Two seasons where those span at most `LONGEST_SEASONAL_WINDOW` rows, else 30."""
    if season and 2 * season <= LONGEST_SEASONAL_WINDOW:
        return 2 * season
    return 30


def seasonal_length(window, season):
    """Rows a seasonal model reads so that the recurrent layer sees each
    window row's change since one season earlier: the window where it spans
    the season and two more rows (the changes after its first season), else
    the window with a season before it."""
    return window if window >= season + 2 else window + season


def split_sizes(n):
    """Sizes of the training part, the validation part and the test tail of `n` values."""
    n_test = round(n * TEST_FRACTION)
    n_validation = round(n * VALIDATION_FRACTION)
    return n - n_test - n_validation, n_validation, n_test


def split_fits(n, length, horizon):
    """Whether `n` rows give every split at least one window of `length` rows."""
    n_train, n_validation, n_test = split_sizes(n)
    return min(n_validation, n_test) >= horizon and n_train >= length + horizon


def parse_date(text):
    for date_format in DATE_FORMATS:
        try:
            return datetime.datetime.strptime(text, date_format)
        except ValueError:
            continue
    return None


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


def _decode(path):
    """The text of `path`, which must be UTF-8; the error names the first bad line."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"Expected `source` to be an existing file. Received: source={path}")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(
            f"Expected `source` to be a readable file. Received: source={path} ({error})"
        ) from None
    try:
        return raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(
            "Expected `source` to be UTF-8 text (one encoding for the whole file). Received: "
            f"{path} with the non-UTF-8 byte {raw[error.start : error.start + 1]!r} on line {line}"
        ) from None


def read_frame(path):
    """Reads a CSV (or `;`, tab or `|` separated) file with a header, as text cells.

    Returns:
        `(frame, lines)`: a `pandas.DataFrame` of stripped str cells and the
        file line of each data row.

    Raises:
        DataError: the file is missing, not UTF-8, empty, has no header, no
            data rows, or a row with fewer or more cells than the header.
    """
    text = _decode(path)
    all_lines = text.splitlines()
    lines = [number for number, line in enumerate(all_lines, start=1) if line.strip()]
    if not lines:
        raise DataError(
            f"Expected `source` to be a CSV file with a header row and data rows. "
            f"Received: {path} (empty)"
        )
    first = all_lines[lines[0] - 1]
    delimiter = max(",;\t|", key=first.count) if any(d in first for d in ",;\t|") else ","
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=True,
        )
    except (pd.errors.ParserError, ValueError) as error:
        raise DataError(
            "Expected `source` to be a CSV file with as many cells in every row as in its "
            f"header. Received: {path} ({str(error).strip()})"
        ) from None
    header = [str(name).strip() for name in frame.columns]
    if any(_is_number(cell) or parse_date(cell) for cell in header):
        raise DataError(
            "Expected `source` to start with a header row naming its columns. Received: "
            f"{path} whose first row {header} holds data"
        )
    frame.columns = header
    if frame.empty:
        raise DataError(
            f"Expected data rows below the header of `source`. Received: {path} "
            f"(header {header} only)"
        )
    # pandas pads a short row with empty cells: found here, not mistaken for gaps.
    for line, row in zip(
        lines[1:],
        csv.reader((all_lines[n - 1] for n in lines[1:]), delimiter=delimiter),
        strict=True,
    ):
        if len(row) < len(header):
            raise DataError(
                f"Expected {len(header)} columns in every row of `source` ({header}). "
                f"Received: line {line} of {path}: {row}"
            )
    frame = frame.apply(lambda column: column.str.strip())
    return frame, lines[1 : len(frame) + 1]


def _numbers(column):
    """`(values, missing, bad)` of a text column: float64 values (NaN where
    missing or bad), and masks of its missing and of its non-numeric cells."""
    missing = column.str.lower().isin(MISSING).to_numpy()
    values = pd.to_numeric(column.where(~missing), errors="coerce").to_numpy(dtype="float64")
    bad = ~missing & ~np.isfinite(values)
    return np.where(bad, np.nan, values), missing, bad


def _is_numeric_column(column):
    _, missing, bad = _numbers(column)
    return not bad.any() and not missing.all()


def _parse_dates(column):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(column, errors="coerce", format="mixed")


def _names(option, argument):
    """Column names from an option: a comma-separated str, a list, or None."""
    if option is None:
        return None
    if isinstance(option, str):
        return [name.strip() for name in option.split(",") if name.strip()]
    if isinstance(option, (list, tuple)) and all(isinstance(name, str) for name in option):
        return [name.strip() for name in option]
    raise ValueError(
        f"Expected `{argument}` to be column names, comma-separated or as a list. "
        f"Received: {argument}={option!r}"
    )


def _check_columns(names, header, argument, path):
    unknown = [name for name in names if name not in header]
    if unknown:
        raise DataError(
            f"Expected `{argument}` to name columns of the CSV header. Received: "
            f"{argument}={','.join(names)!r} ({unknown[0]!r} is not in the header of {path}: "
            f"{header})"
        )


def _index_column(frame, named):
    """The first column if it is a row index (and not named as data), else None."""
    first = frame.columns[0]
    if first in named or len(frame.columns) < 2:
        return None
    if first.lower() in INDEX_NAMES or first.lower().startswith("unnamed:"):
        return first
    values, _, bad = _numbers(frame[first])
    if bad.any() or np.isnan(values).any():
        return None
    return (
        first
        if values[0] in (0, 1) and np.array_equal(np.diff(values), np.ones(len(values) - 1))
        else None
    )


def _date_columns(frame, date_column, named, lines, path):
    """`(names, timestamps)` of the dates: one column, `year, month[, day[, hour]]`,
    or `year` alone; `([], None)` without dates."""
    lower = {name.lower(): name for name in frame.columns if name not in named}
    if date_column is not None:
        timestamps = _parse_dates(frame[date_column])
        bad = np.flatnonzero(timestamps.isna().to_numpy())
        if len(bad):
            raise DataError(
                f"Expected dates in the date column {date_column!r}. Received: "
                f"{frame[date_column].iloc[bad[0]]!r} on line {lines[bad[0]]} of {path}"
            )
        return [date_column], pd.DatetimeIndex(timestamps)
    if "year" in lower:
        parts = [part for part in ("year", "month", "day", "hour") if part in lower]
        if parts[:2] == ["year", "month"] or parts == ["year"]:
            names = [lower[part] for part in parts]
            numbers = {}
            for part, name in zip(parts, names, strict=True):
                values, _, bad = _numbers(frame[name])
                if bad.any() or np.isnan(values).any():
                    row = int(np.flatnonzero(bad | np.isnan(values))[0])
                    raise DataError(
                        f"Expected whole numbers in the date column {name!r}. Received: "
                        f"{frame[name].iloc[row]!r} on line {lines[row]} of {path}"
                    )
                numbers[part] = values.astype("int64")
            numbers.setdefault("month", np.ones(len(frame), dtype="int64"))
            numbers.setdefault("day", np.ones(len(frame), dtype="int64"))
            try:
                timestamps = pd.to_datetime(pd.DataFrame(numbers))
            except (ValueError, OverflowError) as error:
                raise DataError(
                    f"Expected valid dates in the columns {names}. Received: {path} ({error})"
                ) from None
            return names, pd.DatetimeIndex(timestamps)
    candidates = [lower[name] for name in DATE_NAMES if name in lower]
    candidates += [name for name in frame.columns if name not in named and name not in candidates]
    for name in candidates:
        if _is_numeric_column(frame[name]):
            continue
        timestamps = _parse_dates(frame[name])
        if not timestamps.isna().any():
            return [name], pd.DatetimeIndex(timestamps)
    return [], None


def read_table(path, target=None, features=None, date_column=None, fill=None):
    """Reads a forecasting table from a CSV file (see the module docstring).

    Args:
        path: The CSV file (`,`, `;`, tab or `|` separated, UTF-8, with a
            header row).
        target: Target column names (a list or a comma-separated str); the
            first column after the index and the dates by default.
        features: Feature column names (a list or a comma-separated str);
            every other numeric column by default, `""` for none. A
            non-numeric feature column is one-hot encoded with the
            categories of the training part.
        date_column: The date column; found by default (see the module
            docstring).
        fill: Missing values are refused by default; `"previous"` repeats
            the last value before each gap and `"linear"` interpolates.

    Returns:
        A `Series`.

    Raises:
        DataError: the file cannot be read as a table, a named column is not
            in it, a target value is missing (without `fill`) or not a
            finite number, or the dates are not in chronological order.
    """
    if fill not in FILLS:
        raise ValueError(f"Expected `fill` to be one of {list(FILLS)}. Received: fill={fill!r}")
    frame, lines = read_frame(path)
    header = list(frame.columns)
    targets, feature_names = _names(target, "target"), _names(features, "features")
    for names, argument in ((targets, "target"), (feature_names, "features")):
        if names is not None:
            _check_columns(names, header, argument, path)
    if date_column is not None:
        _check_columns([date_column], header, "date_column", path)
    named = {*(targets or ()), *(feature_names or ())}
    index = _index_column(frame, named | {date_column})
    named |= {index} if index else set()
    date_names, timestamps = _date_columns(frame, date_column, named, lines, path)
    rest = [name for name in header if name not in named and name not in date_names]
    if not targets:
        if not rest:
            raise DataError(
                f"Expected `source` to have a value column beside its dates and index. "
                f"Received: {path} with header {header}"
            )
        targets = rest[:1]
    if feature_names is None:
        feature_names = [
            name for name in rest if name not in targets and _is_numeric_column(frame[name])
        ]
    overlap = sorted(set(targets) & set(feature_names))
    if overlap:
        raise ValueError(
            "Expected `features` and `target` to name different columns. Received: "
            f"{overlap} in both"
        )
    if timestamps is not None:
        order = np.flatnonzero(np.diff(timestamps.asi8) <= 0)
        if len(order):
            row = int(order[0]) + 1
            raise DataError(
                f"Expected the rows of `source` in chronological order. Received: {path} "
                f"(data row {row + 1} dated {timestamps[row]} follows {timestamps[row - 1]})"
            )
    n_train = split_sizes(len(frame))[0]
    columns, values = [], []
    for name in targets + feature_names:
        role = "value column" if name in targets else "feature column"
        numbers, missing, bad = _numbers(frame[name])
        if name in feature_names and bad.any():
            categories = frame[name].where(~frame[name].str.lower().isin(MISSING), "")
            for category in sorted(set(categories.iloc[:n_train])):
                columns.append(f"{name}={category}")
                values.append((categories == category).to_numpy(dtype="float64"))
            continue
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"Expected finite numbers in the {role} {name!r}. Received: "
                f"{frame[name].iloc[row]!r} on line {lines[row]} of {path}"
            )
        if missing.any() and fill is None:
            row = int(np.flatnonzero(missing)[0])
            raise DataError(
                f"Expected a value in every row of the {role} {name!r}, or a `fill` "
                f"({', '.join(FILLS[1:])}) for missing ones. Received: "
                f"{frame[name].iloc[row]!r} on line {lines[row]} of {path}"
            )
        if missing.all():
            raise DataError(
                f"Expected at least one value in the {role} {name!r}. Received: "
                f"{path} (all {len(missing)} value(s) missing)"
            )
        columns.append(name)
        values.append(fill_missing(numbers, fill))
    if timestamps is None:
        dates = [str(row) for row in range(len(frame))]
        spacing = None
    else:
        dates = frame[date_names[0]].tolist() if len(date_names) == 1 else _iso(timestamps)
        spacing = _median_step(timestamps) / pd.Timedelta(days=1) if len(frame) > 1 else None
    return Series(
        source=str(path),
        dates=dates,
        timestamps=timestamps,
        targets=list(targets),
        columns=columns,
        table=np.stack(values, axis=1),
        spacing=spacing,
    )


def _median_step(timestamps):
    """The median spacing of `timestamps`, a `pandas.Timedelta`."""
    steps = np.diff(pd.DatetimeIndex(timestamps).as_unit("ns").asi8)
    return pd.Timedelta(int(np.median(steps)), unit="ns")


def _iso(timestamps):
    """Dates as ISO text: the day alone where no row has a time of day."""
    timestamps = pd.DatetimeIndex(timestamps)
    daily = bool((timestamps == timestamps.normalize()).all())
    return [stamp.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M:%S") for stamp in timestamps]


def read_series_csv(path, date_column=None, value_column=None, fill=None):
    """Reads one value column of a CSV file: `(dates, values)`.

    Args:
        path: The CSV file.
        date_column: The date column; found by default.
        value_column: The value column; the first column after the index
            and dates by default.
        fill: What to do with missing values (see `read_table`).

    Returns:
        `(dates, values)`: a list of str and a float64 NumPy array.
    """
    series = read_table(path, target=value_column, features="", date_column=date_column, fill=fill)
    return series.dates, series.table[:, 0]


def autocorrelation(values):
    """The autocorrelation of `values` at every lag (FFT, biased estimator)."""
    x = np.asarray(values, dtype="float64") - np.mean(values)
    size = 1 << (2 * len(x) - 1).bit_length()
    spectrum = np.fft.rfft(x, size)
    correlation = np.fft.irfft(spectrum * np.conj(spectrum), size)[: len(x)]
    return correlation / correlation[0] if correlation[0] > 0 else np.zeros(len(x))


def _detrended(values):
    steps = np.arange(len(values))
    return values - np.polyval(np.polyfit(steps, values, 1), steps)


def infer_season(training_values, spacing=None):
    """The season (in rows) of a training part, or None (see the module docstring).

    Args:
        training_values: The first target's training values.
        spacing: The median spacing of the dates in days, or None.

    Returns:
        The season: a calendar season of the spacing that the autocorrelation
        confirms (the one with the highest autocorrelation), the strongest
        autocorrelation peak without a calendar season, or None.
    """
    x = np.asarray(training_values, dtype="float64")
    if len(x) < 2 * SEASONS_IN_TRAINING or np.std(x) == 0:
        return None
    acf = autocorrelation(_detrended(x))
    longest = len(x) // SEASONS_IN_TRAINING

    def confirmed(lag):
        return (
            2 <= lag <= longest and acf[lag] >= MIN_SEASON_CORRELATION and acf[lag] > acf[lag // 2]
        )

    calendar = next(
        (
            seasons
            for (low, high), seasons in CALENDAR_SEASONS
            if spacing and low <= spacing <= high
        ),
        None,
    )
    if calendar is not None:
        lags = [lag for lag in calendar if confirmed(lag)]
    else:
        lags = [
            lag
            for lag in range(2, longest)
            if acf[lag] >= acf[lag - 1] and acf[lag] >= acf[lag + 1] and confirmed(lag)
        ]
    return max(lags, key=lambda lag: acf[lag]) if lags else None


#: Fractions of the trained correction `KeepBestStart` tries on validation
#: (the fractions in between, tried on the tuning series, lost on their
#: held-out parts as often as they won).
CORRECTION_SCALES = (0.0, 1.0)
#: Relative validation MAE the correction must save over the baseline start.
MIN_VALIDATION_GAIN = 0.01


class KeepBestStart(keras.callbacks.Callback):
    """After training, keeps the correction (the fraction of it in
    `CORRECTION_SCALES` that does best on validation) only where it lowers
    the validation MAE of the baseline start by `MIN_VALIDATION_GAIN`; else
    returns the model to its start, the baseline forecast.

    EarlyStopping only compares finished epochs, on the loss: a correction
    that lowers the squared error of a short validation split may still
    raise its MAE (a few large errors made smaller, many small ones larger),
    and one that barely beats its baseline there tends to lose on new data.

    The start is the model with its zero-initialised `"change"` layer back
    at zero, whatever the recurrent layer's weights: so a resumed run ends
    where an uninterrupted one would. The `"change"` layer is linear, so
    scaling its weights scales the correction.

    Args:
        validation_data: The validation `tf.data.Dataset`.
        metric: The name of the compiled validation metric compared.

    Attributes:
        scale: The fraction kept (after training).
        errors: The validation `metric` of each fraction tried (after training).
    """

    def __init__(self, validation_data, metric="forecast_mae"):
        super().__init__()
        self.validation_data = validation_data
        self.metric = metric
        self.scale = self.errors = None

    def _error(self):
        results = self.model.evaluate(self.validation_data, verbose=0, return_dict=True)
        return float(results[self.metric])

    def on_train_end(self, logs=None):
        change = self.model.get_layer("change")
        trained = change.get_weights()
        errors = {}
        for scale in CORRECTION_SCALES:
            change.set_weights([weight * scale for weight in trained])
            errors[scale] = self._error()
        best = min(errors, key=errors.get)
        if errors[best] > errors[0.0] * (1 - MIN_VALIDATION_GAIN):
            best = 0.0
        self.scale, self.errors = best, errors
        change.set_weights([weight * best for weight in trained])


class Forecasting(Task):
    """Multi-step forecasts of one or more series from their recent past.

    Args:
        window: Rows the recurrent layer reads. By default two seasons
            where those span at most 60 rows, else 30 (30 without a season),
            and at most half the training part.
        horizon: Values forecast after each window. By default `season // 2`,
            at most 7 (1 without a season).
        season: Seasonality period in rows; inferred by default (see the
            module docstring).
        mode: `"many_to_one"` (one forecast per window) or `"many_to_many"`
            (a forecast after every step of the window, trained on all of
            them; one target and no features).
        reference: The baseline the recurrent layer corrects: `"none"`,
            `"last"` or `"season"`; by default the one with the lowest
            validation MAE.
        loss: `"mse"` or `"mae"`, on normalised values.
        dropout: Dropout of the recurrent layer's inputs.
        target: Target column(s) of a CSV source, comma-separated or a
            list; the first column after the index and dates by default.
        features: Feature column(s) of a CSV source; every other numeric
            column by default, `""` for none; non-numeric ones are one-hot.
        date_column: The date column of a CSV source; found by default.
        freq: The spacing of an undated CSV source, as a pandas frequency
            (`"h"`, `"D"`, `"W"`, `"MS"`, `"QS"`, `"YS"`...): it gives the
            calendar seasons to try and the dates of `predict`'s forecasts.
        fill: Missing values in a CSV source (empty cells, `nan`, `NA`...)
            are refused by default; `"previous"` repeats the last value
            before each gap and `"linear"` interpolates across it.
        min_epoch_windows: An epoch covers the training windows repeated
            until there are at least this many, so short series get as many
            updates per epoch as long ones.
        value_column: The former name of `target`; refused with a message
            that says so.

    Example:

    >>> task = Forecasting(window=24, horizon=6)
    >>> data = task.load_data("airline-passengers")
    >>> data.season, data.inputs("test").shape, data.targets("test").shape
    (12, (24, 24, 1), (24, 6))
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
        target=None,
        features=None,
        date_column=None,
        freq=None,
        fill=None,
        min_epoch_windows=1024,
        value_column=None,
    ):
        if value_column is not None:
            raise ValueError(
                "Expected `target` to name the target column(s); `value_column` is its former "
                f"name. Received: value_column={value_column!r} (pass target={value_column!r})"
            )
        for name, value in (
            ("horizon", horizon),
            ("season", season),
            ("min_epoch_windows", min_epoch_windows),
        ):
            check_optional_positive_int(name, value)
        if window is not None:
            check_int_at_least("window", window, 2)
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
        _names(target, "target")
        _names(features, "features")
        if date_column is not None and not isinstance(date_column, str):
            raise ValueError(
                f"Expected `date_column` to be a column name. Received: date_column={date_column!r}"
            )
        self.offset = None
        if freq is not None:
            try:
                self.offset = pd.tseries.frequencies.to_offset(freq)
            except (ValueError, TypeError):
                raise ValueError(
                    "Expected `freq` to be a pandas frequency such as 'h', 'D', 'W', 'MS', 'QS' "
                    f"or 'YS'. Received: freq={freq!r}"
                ) from None
        self.window = window
        self.horizon = horizon
        self.season = season
        self.mode = mode
        self.reference = reference
        self.loss = loss
        self.dropout = dropout
        self.target = target
        self.features = features
        self.date_column = date_column
        self.freq = freq
        self.fill = fill
        self.min_epoch_windows = min_epoch_windows

    def read_series(self, source=None):
        """Reads a shipped series (by name) or a CSV file (by path) as a `Series`."""
        source = str(source or self.default_source)
        path = shipped_path("timeseries", SHIPPED[source]) if source in SHIPPED else source
        series = read_table(path, self.target, self.features, self.date_column, self.fill)
        series.source = source
        if series.spacing is None and self.offset is not None:
            start = pd.Timestamp("2001-01-01")
            series.spacing = ((start + self.offset) - start) / pd.Timedelta(days=1)
        return series

    def load_data(self, source=None, seed=0, limit=None):
        """Loads a series and splits it chronologically: 70% train, 10% validation, 20% test.

        Args:
            source: `"daily-min-temperatures"` (shipped, the default),
                `"airline-passengers"` (shipped), or the path of a CSV file
                (see the module docstring).
            seed: Unused (the split is chronological); accepted for the
                common task interface.
            limit: Optional number of windows to keep per split (the first
                ones), for quick runs.

        Returns:
            A `SeriesData`.
        """
        del seed
        series = self.read_series(source)
        source = series.source
        n = len(series.table)
        n_train, n_validation, _ = split_sizes(n)
        training = series.table[:n_train]
        season = self.season or infer_season(training[:, 0], series.spacing)
        horizon = self.horizon or (max(1, min(7, season // 2)) if season else 1)
        window = self.window or max(2, min(default_window(season), (n_train - horizon) // 2))
        length = window if self.mode == "many_to_many" else max(window, season or 0)
        if not split_fits(n, length, horizon):
            minimum = next(
                m
                for m in range(n + 1, n + 10 * (length + horizon) + 10)
                if split_fits(m, length, horizon)
            )
            cause = f"season={season}" if length > window else f"window={window}"
            raise DataError(
                f"Expected a series of at least {minimum} values for {cause} and "
                f"horizon={horizon} (70% train, 10% validation, 20% test). Received: "
                f"{n} value(s) in {source}"
                + ("; pass a smaller `season`" if length > window else "")
            )
        std = training.std(axis=0)
        constant = [name for name, s in zip(series.columns, std, strict=True) if s == 0]
        if any(name in series.targets for name in constant):
            raise DataError(
                f"Expected a series that varies over its training part. Received: {source} "
                f"(constant {constant[0]} = {training[0, series.columns.index(constant[0])]})"
            )
        std = np.where(std == 0, 1.0, std)

        def origins(first_target, end, length=length):
            origin_range = np.arange(max(first_target - 1, length - 1), end - horizon)
            return origin_range if limit is None else origin_range[:limit]

        data = SeriesData(
            series=series,
            window=window,
            horizon=horizon,
            season=season,
            validation_start=n_train,
            test_start=n_train + n_validation,
            mean=training.mean(axis=0),
            std=std,
            train_origins=origins(0, n_train),
            validation_origins=origins(n_train, n_train + n_validation),
            test_origins=origins(n_train + n_validation, n),
        )
        longer = seasonal_length(window, season) if season else 0
        if (
            self.mode == "many_to_one"
            and longer > length
            and split_fits(n, longer, horizon)
            and horizon <= season
            and self.model_reference(data) == "season"
        ):
            # A season longer than the window: the seasonal model reads a
            # season more, so each window row has its value a season earlier.
            data = dataclasses.replace(
                data,
                seasonal_length=longer,
                train_origins=origins(0, n_train, longer),
                validation_origins=origins(n_train, n_train + n_validation, longer),
                test_origins=origins(n_train + n_validation, n, longer),
            )
        return data

    def baseline_errors(self, data, split="validation"):
        """`{reference: MAE}` of each usable reference's forecast on `split`
        (normalised by each target's training standard deviation)."""
        targets = data.targets(split)
        scale = data.std[: data.n_targets]
        if data.n_targets == 1:
            scale = scale[0]
        forecasts = {"none": data.training_mean(split), "last": data.persistence(split)}
        if data.season is not None and data.horizon <= data.season:
            forecasts["season"] = data.seasonal_naive(split)
        return {
            reference: float(np.mean(np.abs(forecast_values - targets) / scale))
            for reference, forecast_values in forecasts.items()
        }

    def model_reference(self, data):
        """The reference of the model for `data`: the option, or the baseline
        with the lowest validation error."""
        if self.reference is None:
            errors = self.baseline_errors(data)
            if (
                self.mode == "many_to_many"
                and not data.window >= (data.season or 0) >= data.horizon
            ):
                errors.pop("season", None)
            return min(errors, key=errors.get)
        if self.reference == "season":
            if data.season is None or data.horizon > data.season:
                raise ValueError(
                    'Expected a season at least as long as the horizon for reference="season". '
                    f"Received: season={data.season}, horizon={data.horizon}"
                )
            if self.mode == "many_to_many" and not data.window >= data.season:
                raise ValueError(
                    'Expected `window >= season >= horizon` for reference="season". Received: '
                    f"window={data.window}, season={data.season}, horizon={data.horizon}"
                )
        return self.reference

    def build_model(self, data, settings):
        """The forecasting model for `data` (see the module docstring).

        Returns:
            A `keras.Model` from `(batch, length, columns)` float32 windows
            (`length` is the window, or the season with `reference="season"`)
            to a dict: `"forecast"`, the forecasts in the series' units, and
            `"scaled"`, the same normalised (what the loss reads); in
            `"many_to_many"` mode `"forecast"` and `"steps"`, the
            `(batch, steps, horizon)` forecasts after every step. `train`
            saves the forecast alone.

            Under a mixed precision policy only the recurrent layer computes
            in half precision: the normalisation, the baseline forecast and
            the correction added to it stay float32, since bfloat16 (8
            significant bits) would round the series' own values.
        """
        encoder_policy = keras.config.dtype_policy().name
        with dtype_policy_scope("float32"):
            build = (
                self._many_to_many_outputs
                if self.mode == "many_to_many"
                else self._many_to_one_outputs
            )
            inputs, outputs = build(data, settings, encoder_policy)
        # Built under the policy itself, the model compiles as Keras does for
        # it (a mixed_float16 model's optimizer scales its loss).
        return TaskModel(inputs, outputs, name=f"forecaster_{settings.cell}", task_name=self.name)

    def _many_to_one_outputs(self, data, settings, encoder_policy):
        window, horizon, season = data.window, data.horizon, data.season
        n_targets, n_columns = data.n_targets, len(data.series.columns)
        reference = self.model_reference(data)
        length = data.max_length if reference == "season" else window
        layers = keras.layers
        inputs = keras.Input((length, n_columns), dtype="float32", name="window")
        z = layers.Rescaling(*_scaling(1.0 / data.std, -data.mean / data.std), name="normalize")(
            inputs
        )
        recent = (
            z if length == window else layers.Cropping1D((length - window, 0), name="recent")(z)
        )
        if reference == "none":
            sequence = recent
        elif reference == "season" and length - season >= 2:
            # The changes since one season earlier: what the correction of a
            # seasonal naive forecast continues, as a seasonal ARIMA reads them.
            now = layers.Cropping1D((season, 0), name="after_first_season")(z)
            before = layers.Cropping1D((0, season), name="one_season_before")(z)
            changes = layers.Subtract(name="seasonal_changes")(
                [
                    _channels(now, 0, n_targets, n_columns, "now_targets"),
                    _channels(before, 0, n_targets, n_columns, "before_targets"),
                ]
            )
            if n_columns > n_targets:
                features = _channels(now, n_targets, n_columns, n_columns, "now_features")
                sequence = layers.Concatenate(name="sequence")([changes, features])
            else:
                sequence = changes
        else:
            # Targets relative to their last value: the model then does not
            # depend on the level of a series whose test tail lies beyond the
            # training range.
            last = layers.Cropping1D((window - 1, 0), name="last_row")(recent)
            targets = _channels(recent, 0, n_targets, n_columns, "recent_targets")
            relative = layers.Subtract(name="relative_to_last")(
                [targets, _channels(last, 0, n_targets, n_columns, "last_targets")]
            )
            if n_columns > n_targets:
                features = _channels(recent, n_targets, n_columns, n_columns, "recent_features")
                sequence = layers.Concatenate(name="sequence")([relative, features])
            else:
                sequence = relative
        encoder = recurrent_layer(
            settings.cell,
            settings.units,
            dropout=self.dropout,
            seed=settings.seed,
            dtype=encoder_policy,
            name="encoder",
        )(sequence)
        change = layers.Dense(
            horizon * n_targets, kernel_initializer="zeros", bias_initializer="zeros", name="change"
        )(encoder)
        change = layers.Reshape((horizon, n_targets), name="correction")(change)
        if reference == "none":
            scaled = layers.Identity(name="scaled")(change)
        else:
            if reference == "last":
                last = layers.Cropping1D((length - 1, 0), name="last_value")(z)
                baseline = layers.UpSampling1D(horizon, name="persistence")(
                    _channels(last, 0, n_targets, n_columns, "last_value_targets")
                )
            else:
                earlier = layers.Cropping1D((length - season, season - horizon), name="season_ago")(
                    z
                )
                baseline = _channels(earlier, 0, n_targets, n_columns, "seasonal_naive")
            scaled = layers.Add(name="scaled")([baseline, change])
        target_mean, target_std = data.mean[:n_targets], data.std[:n_targets]
        units = layers.Rescaling(*_scaling(target_std, target_mean), name="unscale")(scaled)
        shape = (horizon,) if n_targets == 1 else (horizon, n_targets)
        forecast_output = layers.Reshape(shape, name="forecast")(units)
        return inputs, {"forecast": forecast_output, "scaled": scaled}

    def _many_to_many_outputs(self, data, settings, encoder_policy):
        if len(data.series.columns) != 1:
            raise ValueError(
                "Expected one target and no features for mode='many_to_many'. Received: "
                f"columns {data.series.columns}"
            )
        window, horizon, season = data.window, data.horizon, data.season
        mean, std = float(data.mean[0]), float(data.std[0])
        reference = self.model_reference(data)
        layers = keras.layers
        inputs = keras.Input((window, 1), dtype="float32", name="window")
        z = layers.Rescaling(1.0 / std, -mean / std, name="normalize")(inputs)
        if reference == "none":
            sequence = z
        else:
            first = layers.Cropping1D((0, window - 1), name="first_value")(z)
            sequence = layers.Subtract(name="relative_to_first")([z, first])
        encoder = recurrent_layer(
            settings.cell,
            settings.units,
            dropout=self.dropout,
            return_sequences=True,
            seed=settings.seed,
            dtype=encoder_policy,
            name="encoder",
        )(sequence)
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
            earlier = (
                layers.Concatenate(name="seasonal_reference")(earlier)
                if horizon > 1
                else earlier[0]
            )
            change = layers.Add(name="plus_reference")([earlier, change])
        steps = layers.Rescaling(std, mean, name="steps")(change)
        last = layers.Cropping1D((window - skipped - 1, 0), name="last_step")(steps)
        forecast_output = layers.Flatten(name="forecast")(last)
        return inputs, {"forecast": forecast_output, "steps": steps}

    def compile(self, model, settings):
        if "scaled" in model.output:
            model.compile(
                optimizer=settings.optimizer(),
                loss={"scaled": self.loss, "forecast": None},
                metrics={"forecast": ["mae"]},
            )
            return
        # The loss weight makes the loss that of normalised values while the
        # outputs (and the MAE metric) stay in the series' units.
        std = float(model.get_layer("normalize").scale) ** -1
        weight = std**-2 if self.loss == "mse" else 1.0 / std
        model.compile(
            optimizer=settings.optimizer(),
            loss={"steps": self.loss, "forecast": None},
            loss_weights={"steps": weight, "forecast": None},
            metrics={"forecast": ["mae"]},
        )

    def datasets(self, data, batch_size):
        reference = self.model_reference(data)
        length = data.max_length if reference == "season" and self.mode == "many_to_one" else None

        def dataset(split, shuffle):
            inputs = data.inputs(split, length)
            targets = {"forecast": data.targets(split)}
            if self.mode == "many_to_many":
                steps = data.step_targets(split)
                if reference == "season":
                    steps = steps[:, data.season - 1 :]
                targets["steps"] = steps
            else:
                scale = data.std[: data.n_targets]
                scaled = (data.target_values(split) - data.mean[: data.n_targets]) / scale
                targets["scaled"] = scaled.astype("float32")
            ds = tf.data.Dataset.from_tensor_slices((inputs, targets))
            if shuffle:
                repeats = math.ceil(self.min_epoch_windows / len(inputs))
                ds = ds.shuffle(len(inputs), seed=0, reshuffle_each_iteration=True)
                ds = ds.repeat(repeats)
            return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

        return dataset("train", shuffle=True), dataset("validation", shuffle=False)

    def inference_model(self, model):
        """The `"forecast"` output alone: windows to forecasts."""
        return forecast_model(model) if isinstance(model.output, dict) else model

    def evaluate(self, model, data):
        """MAE and RMSE of the forecasts over all steps of the test windows
        (series' units; with several targets, also each target's MAE)."""
        forecasts = forecast(model, data.inputs("test", model.inputs[0].shape[1]))
        targets = data.targets("test")
        metrics = error_metrics(forecasts, targets)
        errors = np.abs(forecasts - targets)
        steps = errors.mean(axis=0) if data.n_targets == 1 else errors.mean(axis=(0, 2))
        metrics["mae_first_step"] = float(steps[0])
        metrics[f"mae_step_{data.horizon}"] = float(steps[-1])
        if data.n_targets > 1:
            for column, name in enumerate(data.series.targets):
                metrics[f"mae_{name}"] = float(errors[..., column].mean())
        metrics["test_windows"] = len(data.test_origins)
        return metrics

    def baselines(self, data):
        targets = data.targets("test")
        results = {"persistence": error_metrics(data.persistence("test"), targets)}
        if data.season is not None:
            results[f"seasonal naive (season={data.season})"] = error_metrics(
                data.seasonal_naive("test"), targets
            )
        return results

    def verdict(self, metrics, baselines):
        """One sentence when the model's held-out MAE is worse than a
        baseline's (the best such baseline), else None."""
        # A model kept at its baseline start matches it up to rounding: no verdict.
        better = {name: values["mae"] for name, values in baselines.items()}
        better = {name: mae for name, mae in better.items() if mae * (1 + TIE) < metrics["mae"]}
        if not better:
            return None
        best = min(better, key=better.get)
        return (
            f"The model does worse than {best} on the held-out part (MAE {metrics['mae']:.4g} "
            f"against {better[best]:.4g}), so {best} is the better forecast for this series."
        )

    def train(self, settings, source=None, limit=None, callbacks=(), strategy=None):
        """Trains as `Task.train` does, then keeps the learnt correction only
        where it beats the untrained start, the chosen baseline, by 1% of
        the validation MAE (`KeepBestStart`); then writes `forecast.png` and adds
        the reference, season, `correction_scale` (1 where the correction
        is kept, 0 where the baseline is; None in `"many_to_many"` mode)
        and `verdict` to `metrics.json`."""
        data = self.load_data(source, limit=limit)
        keeper = None
        if self.mode == "many_to_one":
            _, validation = self.datasets(data, settings.batch_size)
            keeper = KeepBestStart(validation)
            callbacks = (*callbacks, keeper)
        result = super().train(
            settings, source=source, limit=limit, callbacks=callbacks, strategy=strategy
        )
        output_dir = pathlib.Path(settings.output_dir)
        plot_forecast(result.model, data, output_dir / "forecast.png")
        summary_path = output_dir / "metrics.json"
        summary = json.loads(summary_path.read_text())
        summary.update(
            reference=self.model_reference(data),
            season=data.season,
            correction_scale=keeper.scale if keeper else None,
            verdict=self.verdict(result.metrics, result.baselines),
        )
        write_json_atomically(summary, summary_path)
        return result

    def predict(self, model, inputs):
        """Forecasts after each input.

        Args:
            model: A forecasting model (its input shape gives the length).
            inputs: Strings, each either the path of a CSV file (read with
                the task's options; the forecast follows its last rows) or,
                for a model of one column, at least `length`
                comma-separated past values, oldest first.

        Returns:
            For a comma-separated input, a list of `horizon` floats; for a
            CSV file, a list of `horizon` dicts: `"date"` (or `"step"`, the
            row position, without dates) and each target's forecast.
        """
        length, n_columns = model.inputs[0].shape[1:]
        results = []
        for text in check_inputs(inputs):
            if (
                text.strip().lower().endswith((".csv", ".tsv", ".txt"))
                or pathlib.Path(text).is_file()
            ):
                results.append(self.forecast_file(model, text.strip()))
                continue
            if n_columns != 1:
                raise ValueError(
                    f"Expected the path of a CSV file for a model of {n_columns} input columns. "
                    f"Received: {text!r}"
                )
            window = parse_window(text, length)[None, :, None]
            results.append(forecast(model, window)[0].tolist())
        return results

    def forecast_file(self, model, source):
        """The forecasts that follow the last rows of `source`, with their dates."""
        series = self.read_series(source)
        length, n_columns = model.inputs[0].shape[1:]
        if len(series.columns) != n_columns:
            raise DataError(
                f"Expected {n_columns} model input column(s) from `source`. Received: "
                f"{len(series.columns)} ({series.columns}) from {source}; pass the "
                "`target` and `features` options the model was trained with"
            )
        if len(series.table) < length:
            raise DataError(
                f"Expected at least {length} rows (the model's input length) in `source`. "
                f"Received: {len(series.table)} in {source}"
            )
        values = forecast(model, series.table[None, -length:])[0]
        values = values[:, None] if values.ndim == 1 else values
        labels = future_dates(series, len(values), self.offset)
        key = "date" if series.timestamps is not None else "step"
        return [
            {key: label, **{name: float(v) for name, v in zip(series.targets, row, strict=True)}}
            for label, row in zip(labels, values, strict=True)
        ]


def _scaling(scale, offset):
    """`Rescaling` arguments: floats for one column (what serving reads), else arrays."""
    scale, offset = np.asarray(scale, "float64"), np.asarray(offset, "float64")
    if scale.size == 1:
        return float(scale.reshape(())), float(offset.reshape(()))
    return scale, offset


def _channels(x, start, stop, n_columns, name):
    """Columns `start:stop` of a `(batch, steps, columns)` tensor."""
    if (start, stop) == (0, n_columns):
        return x
    layers = keras.layers
    swapped = layers.Permute((2, 1), name=f"{name}_columns_first")(x)
    cropped = layers.Cropping1D((start, n_columns - stop), name=f"{name}_crop")(swapped)
    return layers.Permute((2, 1), name=name)(cropped)


def future_dates(series, count, offset=None):
    """Labels of the `count` rows after `series`: dates, or row positions."""
    n = len(series.table)
    if series.timestamps is None:
        return list(range(n, n + count))
    timestamps = series.timestamps
    if offset is None:
        inferred = pd.infer_freq(timestamps[-min(len(timestamps), 100) :]) if n >= 3 else None
        offset = pd.tseries.frequencies.to_offset(inferred) if inferred else None
    if offset is None:
        step = _median_step(timestamps)
        future = [timestamps[-1] + step * k for k in range(1, count + 1)]
    else:
        future = [timestamps[-1] + offset * k for k in range(1, count + 1)]
    return _iso(future)


def plot_forecast(model, data, path):
    """Plots each target's recent history, the model's forecast after the last
    test window and after the end of the series, and the baselines' forecasts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    length = model.inputs[0].shape[1]
    horizon, n = data.horizon, len(data.table)
    origin = int(data.test_origins[-1])
    shown = np.arange(max(0, origin - 4 * data.window), n)
    after_test = forecast(model, data.table[None, origin - length + 1 : origin + 1])[0]
    after_end = forecast(model, data.table[None, n - length :])[0]
    steps_test = np.arange(origin + 1, origin + horizon + 1)
    steps_end = np.arange(n, n + horizon)
    persistence = np.repeat(data.values[origin][None], horizon, axis=0)
    seasonal = None
    if data.season is not None:
        lags = data.season * np.ceil(np.arange(1, horizon + 1) / data.season).astype(int)
        seasonal = data.values[origin + np.arange(1, horizon + 1) - lags]
    figure, axes = plt.subplots(data.n_targets, 1, figsize=(9, 3.2 * data.n_targets), squeeze=False)
    for column, axis in enumerate(axes[:, 0]):
        model_test = after_test if data.n_targets == 1 else after_test[:, column]
        model_end = after_end if data.n_targets == 1 else after_end[:, column]
        axis.plot(shown, data.values[shown, column], color="0.3", label="history")
        axis.plot(steps_test, model_test, "o-", color="C0", label="model (last test window)")
        axis.plot(steps_end, model_end, "o--", color="C0", label="model (next values)")
        axis.plot(steps_test, persistence[:, column], "s:", color="C1", label="persistence")
        if seasonal is not None:
            axis.plot(steps_test, seasonal[:, column], "^:", color="C2", label="seasonal naive")
        axis.axvline(data.test_start, color="0.7", linestyle="--", linewidth=1)
        axis.set_ylabel(data.series.targets[column])
        axis.set_xlabel(f"row of {pathlib.Path(data.source).name}")
        axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    save_figure(figure, path, dpi=90)


def check_inputs(inputs):
    if isinstance(inputs, str):
        inputs = [inputs]
    inputs = list(inputs)
    if not inputs or any(not isinstance(text, str) or not text.strip() for text in inputs):
        raise ValueError(
            "Expected one or more non-empty strings of comma-separated numbers or CSV paths. "
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
    """The `"forecast"` output of a training model, as a model of its own."""
    return TaskModel(
        model.inputs,
        model.get_layer("forecast").output,
        name=model.name,
        task_name=Forecasting.name,
    )


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
