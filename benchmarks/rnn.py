"""Side-by-side speed of keras_seqcells layers and Keras's built-in layers.

Measures, in one run and with the same sizes and equations, a training step
(forward, backward and optimizer) and inference latency of
`keras_seqcells.SimpleRNN/LSTM/GRU` and `keras.layers.SimpleRNN/LSTM/GRU`, and
prints medians after warm-up with the ratio ours / built-in (below 1 means
ours is faster). Works on every Keras backend:

    python -m benchmarks.rnn                       # TensorFlow, this machine
    KERAS_BACKEND=jax python -m benchmarks.rnn     # JAX (GPU when present)

Options: `--batch`, `--timesteps`, `--features`, `--units`, `--repeats`,
`--csv PATH` to also write the table as CSV.
"""

import argparse
import csv
import statistics
import time

import keras
import numpy as np

import keras_seqcells

PAIRS = {
    "SimpleRNN": (keras_seqcells.SimpleRNN, keras.layers.SimpleRNN, {}),
    "LSTM": (keras_seqcells.LSTM, keras.layers.LSTM, {}),
    # Same equations as ours once converted: Keras's reset-after form.
    "GRU": (keras_seqcells.GRU, keras.layers.GRU, {"reset_after": True}),
}


def _model(layer_class, units, timesteps, features, **kwargs):
    model = keras.Sequential(
        [keras.Input((timesteps, features)), layer_class(units, **kwargs), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse", jit_compile="auto")
    return model


def _median_seconds(function, repeats, warmup=3):
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(layer_class, args, **kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, args.timesteps, args.features)).astype("float32")
    y = rng.normal(size=(args.batch, 1)).astype("float32")
    model = _model(layer_class, args.units, args.timesteps, args.features, **kwargs)

    def train_step():
        model.train_on_batch(x, y)

    def infer():
        keras.ops.convert_to_numpy(model.predict_on_batch(x))

    x_one = x[:1]

    def infer_one():
        keras.ops.convert_to_numpy(model.predict_on_batch(x_one))

    return {
        "train step": _median_seconds(train_step, args.repeats),
        f"inference B={args.batch}": _median_seconds(infer, args.repeats),
        "inference B=1": _median_seconds(infer_one, args.repeats),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--csv")
    args = parser.parse_args(argv)

    print(
        f"backend={keras.backend.backend()} B={args.batch} T={args.timesteps} "
        f"D={args.features} H={args.units}, medians of {args.repeats} after warm-up"
    )
    rows = []
    for name, (ours, builtin, kwargs) in PAIRS.items():
        our_times = measure(ours, args, **kwargs)
        builtin_times = measure(builtin, args, **kwargs)
        for measure_name, seconds in our_times.items():
            reference = builtin_times[measure_name]
            rows.append((name, measure_name, seconds * 1e3, reference * 1e3, seconds / reference))
    print(f"{'layer':<10} {'measure':<18} {'ours ms':>9} {'keras ms':>9} {'ratio':>6}")
    for name, measure_name, ours_ms, keras_ms, ratio in rows:
        print(f"{name:<10} {measure_name:<18} {ours_ms:9.3f} {keras_ms:9.3f} {ratio:6.2f}")
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["layer", "measure", "ours_ms", "keras_ms", "ratio"])
            writer.writerows(rows)


if __name__ == "__main__":
    main()
