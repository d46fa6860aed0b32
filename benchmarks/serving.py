"""Serving latency of exported models, through a session over TensorFlow's C++ runtime.

Exports, in one run, the same many-to-one model (a window of `--timesteps`
values of `--features` features, an LSTM of `--units` units, a Dense head)
built with `keras_seqcells.LSTM` and with `keras.layers.LSTM` (the same
weights, copied over), loads each export with
`tf.compat.v1.saved_model.loader.load` (Python over TensorFlow's C++
session; TensorFlow Serving's own `LoadSavedModel` and request handling are
not run) and times `session.run` of the `serving_default` and `serving_xla`
signatures at batch 1 and 64: medians after warm-up, and ratios ours /
Keras's (below 1: ours is faster) and XLA / plain. The table goes to
`benchmarks/results/serving.md` and the `serving` block of
`saved_models/README.md`.

    python -m benchmarks.serving
    python -m benchmarks.serving --timesteps 50 --units 128 --repeats 50

The exports go to a temporary folder unless `--keep DIR` is given.
"""

import argparse
import os
import platform
import statistics
import tempfile
import time

import keras
import numpy as np

import keras_seqcells
from benchmarks.readme_blocks import write_block
from keras_seqcells.serving import export
from keras_seqcells.serving.serve_check import CppLoaded

BATCHES = (1, 64)
SIGNATURES = ("serving_default", "serving_xla")


def _model(layer, timesteps, features):
    inputs = keras.Input((timesteps, features), name="sequence")
    outputs = keras.layers.Dense(1, name="score")(layer(inputs))
    return keras.Model(inputs, outputs)


def models(timesteps, features, units, seed=0):
    """`{"keras_seqcells": model, "keras": model}` with the same weights."""
    keras.utils.set_random_seed(seed)
    ours = _model(keras_seqcells.LSTM(units), timesteps, features)
    theirs = _model(keras.layers.LSTM(units), timesteps, features)
    theirs.set_weights(ours.get_weights())
    return {"keras_seqcells": ours, "keras": theirs}


def time_signature(loaded, name, feed, repeats, warmup=5):
    """Median seconds of one request of `feed` to signature `name`."""
    for _ in range(warmup):
        loaded.run(name, feed)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loaded.run(name, feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(folder, timesteps=30, features=8, units=64, repeats=30):
    """`{(model, signature, batch): median seconds}` over the exports of both models."""
    results = {}
    rng = np.random.default_rng(0)
    for label, model in models(timesteps, features, units).items():
        path = export(model, os.path.join(folder, label))
        with CppLoaded(path) as loaded:
            for batch in BATCHES:
                feed = {"sequence": rng.normal(size=(batch, timesteps, features)).astype("float32")}
                answers = [loaded.run(name, feed)["score"] for name in SIGNATURES]
                np.testing.assert_allclose(answers[0], answers[1], rtol=1e-4, atol=1e-5)
                for name in SIGNATURES:
                    results[label, name, batch] = time_signature(loaded, name, feed, repeats)
    return results


def report(results, timesteps, features, units, repeats):
    """The results as the markdown of the `serving` block."""
    machine = f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}"
    lines = [
        f"LSTM of {units} units over {timesteps} steps of {features} features, a Dense head; "
        f"medians of {repeats} requests through `session.run` on {machine}, "
        f"load average {os.getloadavg()[0]:.1f} after the run (other processes compete for "
        "the cores above a load of one per core); regenerate with "
        "`python -m benchmarks.serving`:",
        "",
        "| signature | batch | keras_seqcells (ms) | keras.layers.LSTM (ms) | ours / Keras "
        "| XLA / plain (ours) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in SIGNATURES:
        for batch in BATCHES:
            ours = results["keras_seqcells", name, batch]
            theirs = results["keras", name, batch]
            xla = (
                f"{ours / results['keras_seqcells', 'serving_default', batch]:.2f}"
                if name != "serving_default"
                else ""
            )
            lines.append(
                f"| `{name}` | {batch} | {1000 * ours:.2f} | {1000 * theirs:.2f} | "
                f"{ours / theirs:.2f} | {xla} |"
            )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=30)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--keep", help="write the exports here")
    args = parser.parse_args(argv)
    options = dict(
        timesteps=args.timesteps, features=args.features, units=args.units, repeats=args.repeats
    )
    if args.keep:
        results = measure(args.keep, **options)
    else:
        with tempfile.TemporaryDirectory() as folder:
            results = measure(folder, **options)
    table = report(results, **options)
    write_block("serving", table)
    print(table)


if __name__ == "__main__":
    main()
