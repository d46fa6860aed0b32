"""Forecast a week of Melbourne's daily minimum temperatures with an LSTM.

The series ships with keras_seqcells. Each example is 30 days of past
temperatures and the 7 days that follow; the last 20% of the series is held
out. The model is a plain `keras.Sequential` with a `keras_seqcells.LSTM`, and
its held-out error is compared with persistence (tomorrow and the following
days are like today). Run: `python examples/forecasting.py`.
"""

import keras
import numpy as np

import keras_seqcells
from keras_seqcells.tasks.data import shipped_path
from keras_seqcells.tasks.forecasting import read_series_csv

WINDOW, HORIZON = 30, 7


def windows(series):
    """Past `WINDOW` values and next `HORIZON` values for every position of `series`."""
    starts = range(len(series) - WINDOW - HORIZON + 1)
    inputs = np.stack([series[s : s + WINDOW] for s in starts])
    targets = np.stack([series[s + WINDOW : s + WINDOW + HORIZON] for s in starts])
    return inputs[..., None].astype("float32"), targets.astype("float32")


def main():
    keras.utils.set_random_seed(0)
    dates, temperatures = read_series_csv(shipped_path("timeseries", "daily-min-temperatures.csv"))
    split = int(len(temperatures) * 0.8)
    mean, std = temperatures[:split].mean(), temperatures[:split].std()
    scaled = (temperatures - mean) / std
    x_train, y_train = windows(scaled[:split])
    # Test windows may read the days before the split; their targets are all after it.
    x_test, y_test = windows(scaled[split - WINDOW :])
    print(f"{len(dates)} days, {dates[0]} to {dates[-1]}; {len(x_train)} training windows")

    model = keras.Sequential(
        [
            keras.Input((WINDOW, 1)),
            keras_seqcells.LSTM(32),
            keras.layers.Dense(HORIZON),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3, clipnorm=1.0), loss="mse")
    model.fit(x_train, y_train, epochs=8, batch_size=64, validation_split=0.1, verbose=2)

    forecasts = model.predict(x_test, verbose=0) * std + mean
    actual = y_test * std + mean
    last_day = x_test[:, -1, :] * std + mean  # broadcasts over the 7 days
    model_mae = np.abs(forecasts - actual).mean()
    persistence_mae = np.abs(last_day - actual).mean()
    print(f"held-out MAE over the next 7 days: LSTM {model_mae:.2f} °C, ", end="")
    print(f"persistence {persistence_mae:.2f} °C")


if __name__ == "__main__":
    main()
