"""The default forecaster on public series that played no part in choosing its defaults.

The defaults (season inference, window, horizon, baseline choice, training
settings) were chosen on the two shipped series only (daily minimum
temperatures and airline passengers). This script writes series from other
packages (statsmodels' datasets, vega_datasets' local files: install them
with `pip install -e .[benchmarks]`) to CSV files in the layouts users have,
trains the default GRU on each with the task's recommended settings and
default options (only the columns are named where a file has several), and
writes the held-out MAE beside persistence and seasonal naive to the
`forecast-unseen` README block. Nothing here is tuned on these series.

    nice -n 10 python -m benchmarks.forecast_unseen
"""

import argparse
import os
import pathlib
import platform

import numpy as np

from benchmarks.readme_blocks import write_block
from keras_seqcells.tasks import Forecasting
from keras_seqcells.tasks.forecasting import CALENDAR_SEASONS, TIE

BLOCK = "forecast-unseen"


def _co2(folder):
    """Weekly Mauna Loa CO2 (1958-2001, statsmodels), gaps as empty cells."""
    import statsmodels.api as sm

    frame = sm.datasets.co2.load_pandas().data
    frame.index.name = "date"
    path = folder / "co2.csv"
    frame.to_csv(path)
    return "co2 (statsmodels), weekly", path, {"fill": "linear"}


def _sunspots(folder):
    """Yearly sunspot activity (1700-2008, statsmodels): a `YEAR` column only."""
    import statsmodels.api as sm

    path = folder / "sunspots.csv"
    sm.datasets.sunspots.load_pandas().data.to_csv(path, index=False)
    return "sunspots (statsmodels), yearly", path, {}


def _nile(folder):
    """Yearly Nile flow (1871-1970, statsmodels), without its dates: `freq=YS`."""
    import statsmodels.api as sm

    path = folder / "nile.csv"
    sm.datasets.nile.load_pandas().data[["volume"]].to_csv(path, index=False)
    return "nile (statsmodels), yearly, undated", path, {"freq": "YS"}


def _seattle_weather(folder):
    """Daily Seattle weather (2012-2015, vega_datasets): maximum temperature,
    with the other numeric columns as features."""
    from vega_datasets import local_data

    path = folder / "seattle-weather.csv"
    local_data.seattle_weather().to_csv(path, index=False, date_format="%Y-%m-%d")
    return "seattle-weather temp_max (vega_datasets), daily", path, {"target": "temp_max"}


def _seattle_weather_categorical(folder):
    """The same with the weather's name as a one-hot feature."""
    path = folder / "seattle-weather.csv"
    features = "precipitation,temp_min,wind,weather"
    options = {"target": "temp_max", "features": features}
    return "seattle-weather temp_max + one-hot weather, daily", path, options


def _seattle_temps(folder):
    """Hourly Seattle temperatures (2010, vega_datasets), the date spread over
    `year, month, day, hour` columns after an index column."""
    from vega_datasets import local_data

    frame = local_data.seattle_temps()
    dates = frame.pop("date")
    for part in ("year", "month", "day", "hour"):
        frame[part] = getattr(dates.dt, part)
    frame = frame[["year", "month", "day", "hour", "temp"]]
    path = folder / "seattle-temps.csv"
    frame.to_csv(path, index_label="No")
    return "seattle-temps (vega_datasets), hourly", path, {}


SERIES = (_co2, _sunspots, _nile, _seattle_weather, _seattle_weather_categorical, _seattle_temps)


def calendar_seasonal_naive(data):
    """`(MAE, season)` on the test windows of the seasonal naive forecast at the
    longest calendar season of the dates' spacing; `(None, None)` without one."""
    seasons = next(
        (
            seasons
            for (low, high), seasons in CALENDAR_SEASONS
            if data.series.spacing and low <= data.series.spacing <= high
        ),
        (),
    )
    origins = data.test_origins
    for season in seasons:
        steps = np.arange(1, data.horizon + 1)
        lags = season * np.ceil(steps / season).astype(int)
        if origins[0] + 1 - lags.max() < 0:
            continue
        forecasts = data.values[origins[:, None] + steps - lags]
        targets = data.values[origins[:, None] + steps]
        return float(np.mean(np.abs(forecasts - targets))), season
    return None, None


def run(folder, output_root):
    rows = []
    for make in SERIES:
        name, path, options = make(folder)
        task = Forecasting(**options)
        data = task.load_data(str(path))
        settings = task.settings(output_dir=str(output_root / path.stem / make.__name__), verbose=2)
        result = task.train(settings, source=str(path))
        model = result.metrics["mae"]
        persistence = result.baselines["persistence"]["mae"]
        seasonal = next(
            (v["mae"] for k, v in result.baselines.items() if k.startswith("seasonal")), None
        )
        seasonal_label = f"{seasonal:.4g}" if seasonal is not None else "—"
        if seasonal is None:
            # The season was refused (too short, or not confirmed): the
            # calendar season's forecast is still a baseline to beat.
            seasonal, season = calendar_seasonal_naive(data)
            if seasonal is not None:
                seasonal_label = f"{seasonal:.4g} (season {season}, refused)"
        best = min(m for m in (persistence, seasonal) if m is not None)
        best_name = "persistence" if best == persistence else "seasonal naive"
        if model < best * (1 - TIE):
            verdict = "beats both" if seasonal is not None else "beats persistence (no season)"
        elif model <= best * (1 + TIE):
            verdict = f"ties {best_name} (kept its baseline start)"
        else:
            verdict = f"**worse than {best_name}**"
        option_text = ", ".join(f"{k}={v}" for k, v in options.items()) or "none"
        rows.append(
            f"| {name} | {len(data.table)} | {option_text} | {data.season or 'none'} | "
            f"{data.window}, {data.horizon}, {task.model_reference(data)} | {model:.4g} | "
            f"{persistence:.4g} | {seasonal_label} | "
            f"{(1 - model / best) * 100:+.1f}% | {verdict} |"
        )
        print(rows[-1], flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-root", default="runs/forecast-unseen")
    args = parser.parse_args(argv)
    output_root = pathlib.Path(args.output_root)
    folder = output_root / "data"
    folder.mkdir(parents=True, exist_ok=True)
    rows = run(folder, output_root)
    machine = f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}"
    beaten = sum("| beats" in row for row in rows)
    table = "\n".join(
        [
            f"Held-out MAE (last 20% of each series, all forecast steps) of the default GRU "
            f"with the recommended settings, seed 0 ({machine}; regenerate with "
            "`nice -n 10 python -m benchmarks.forecast_unseen`). Gain: how much lower the "
            "model's MAE is than the better baseline's. Where the default season rule refused "
            "the calendar season, its seasonal naive forecast is shown and counted all the "
            f"same. The model beats the baselines on {beaten} of {len(rows)} series.",
            "",
            "| series | rows | options | season | window, horizon, reference | model MAE | "
            "persistence | seasonal naive | gain | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    write_block(BLOCK, table)
    print(table)


if __name__ == "__main__":
    main()
