"""Side-by-side speed of keras_seqcells layers and Keras's built-in layers.

Measures, in one run and with the same sizes and equations,
`keras_seqcells.SimpleRNN/LSTM/GRU` against `keras.layers.SimpleRNN/LSTM/GRU`
(GRU with `reset_after=True`, the form whose equations ours maps onto), and
reports medians after warm-up with the ratio ours / built-in (below 1 means
ours is faster). Repeats of ours and of the built-in layer are interleaved, so
that both see the same load on a shared machine.

- training step: `model.train_on_batch` (forward, backward, Adam) of
  `Input -> layer -> Dense(1)`, B=64, T=100, D=32, H=128 and H=512;
- inference latency at B=1 and B=256, T=100, H=128: a compiled forward call
  `model(x, training=False)`, in a `tf.function` (without `jit_compile`, the
  built-in layers' default) on TensorFlow, in `jax.jit` on JAX and eagerly
  under `torch.no_grad()` on torch (Keras's default there);
- scaling of that forward call (B=64) with T in {10, 100, 1000} (H=128) and
  with H in {64, 256, 1024} (T=100);
- achieved GFLOP/s of the recurrent loop in those forward calls (the two
  matrix products of every step, `2 B (D + H) k H` per step for k gate
  blocks), as a fraction of this machine's matmul peak, measured in the same
  run as a loop of T products of the same sizes. The built-in layer's
  fraction is also the lowest ratio ours / built-in that those products
  allow: a layer at the peak rate would reach it;
- peak memory of a training step: each layer trains in a fresh subprocess,
  which reports its peak resident set size (Linux `VmHWM`, else
  `resource.getrusage`) and its growth over building the model and the steps.

With `--peers torch` it measures instead, on TensorFlow, ours and Keras's
built-in layers against PyTorch's `torch.nn.RNN` (tanh) / `LSTM` / `GRU`:
the training step (B=64, T=100, D=32, H=128, or the sizes `--h` names, with
a dense head, MSE loss and Adam) and inference at B=1 and B=256. PyTorch runs
in a process of its own (`benchmarks/torch_peer.py`) with
`torch.set_num_threads` equal to the threads TensorFlow uses, and waits
while this process measures: each round times ours, then Keras's layer, then
PyTorch's, so the three see the same load; the table holds the medians of
the rounds and the ratio ours / the faster peer. Each training step is also
given as a share of this machine's matmul peak (the best of a few float32
2048 x 2048 `tf.matmul`s, measured before and after the rounds):
`training_step_flops` / (peak x step time), where the step's matrix-product
FLOPs are 3 x (2 B T (D + H) k H + 2 B H) for k gate blocks (see
`training_step_flops`).

Usage:

    python -m benchmarks.rnn                   # everything (~10 min on 2 cores)
    python -m benchmarks.rnn --quick           # fewer sizes and repeats
    python -m benchmarks.rnn --update-readme   # also refresh the README's `rnn` block
    python -m benchmarks.rnn --peers torch --quick [--h 128 512] [--update-readme]
    python -m benchmarks.rnn --peers torch --h 128 512 --policy mixed_bfloat16 --out /tmp/bf16
    KERAS_BACKEND=jax python -m benchmarks.rnn --quick
    KERAS_BACKEND=torch python -m benchmarks.rnn --quick --update-readme

It writes `rnn.md`, `rnn.csv` and `rnn.png` to `--out` (default
`benchmarks/results/` on TensorFlow, `benchmarks/results/<backend>/` on the
other backends). `--update-readme` refreshes the README's `rnn` block on
TensorFlow and its `rnn-<backend>` block on another backend. With `--peers`
it writes `rnn-peers.md` and `rnn-peers.csv` instead, and `--update-readme`
refreshes the `rnn-peers` block.
"""

import argparse
import contextlib
import csv
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np

import keras_seqcells
from benchmarks.readme_blocks import write_block

ROOT = Path(__file__).resolve().parent.parent

CELLS = {
    "SimpleRNN": (keras_seqcells.SimpleRNN, keras.layers.SimpleRNN, {}, 1),
    "LSTM": (keras_seqcells.LSTM, keras.layers.LSTM, {}, 4),
    # Same equations as ours once converted: Keras's reset-after form.
    "GRU": (keras_seqcells.GRU, keras.layers.GRU, {"reset_after": True}, 3),
}
FEATURES = 32
TARGETS = {
    "train": 1.0,
    "infer B=1": 0.3,
    "infer B=256": 0.55,
}


# ------------------------------------------------------------------ timing
def interleaved_medians(functions, repeats, warmup=2):
    """Median seconds of each function, their repeats interleaved round-robin."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _model(layer_class, units, timesteps, **kwargs):
    model = keras.Sequential(
        [keras.Input((timesteps, FEATURES)), layer_class(units, **kwargs), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse", jit_compile="auto")
    return model


def _inputs(batch, timesteps, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, timesteps, FEATURES)).astype("float32")
    y = rng.normal(size=(batch, 1)).astype("float32")
    return x, y


def compiled_forward(model):
    """`model(x, training=False)` compiled the backend's default way."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        function = tf.function(lambda x: model(x, training=False))
        return lambda x: function(x).numpy()
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        function = jax.jit(lambda t, n, x: model.stateless_call(t, n, x, training=False)[0])
        return lambda x: np.asarray(function(trainable, non_trainable, x))
    if backend == "torch":
        import torch

        def forward(x):
            with torch.no_grad():
                return keras.ops.convert_to_numpy(model(x, training=False))

        return forward
    return lambda x: keras.ops.convert_to_numpy(model(x, training=False))


def matmul_peak(batch, rows, columns, steps, repeats):
    """GFLOP/s of `steps` chained-shape products (batch, rows) @ (rows, columns)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(batch, rows)).astype("float32")
    b = (rng.normal(size=(rows, columns)) / np.sqrt(rows)).astype("float32")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        def loop(a, b):
            def body(i, total):
                return i + 1, total + tf.matmul(a + tf.cast(i, a.dtype), b)

            zeros = tf.zeros((batch, columns))
            return tf.while_loop(lambda i, _: i < steps, body, (0, zeros))[1]

        # The better of a plain and an XLA-compiled loop.
        plain, compiled = tf.function(loop), tf.function(loop, jit_compile=True)
        seconds = interleaved_medians(
            {"plain": lambda: plain(a, b).numpy(), "xla": lambda: compiled(a, b).numpy()},
            repeats,
        )
        return 2.0 * batch * rows * columns * steps / min(seconds.values()) / 1e9
    elif backend == "jax":
        import jax

        @jax.jit
        def loop(a, b):
            def body(i, total):
                return total + (a + i) @ b

            return jax.lax.fori_loop(0, steps, body, jax.numpy.zeros((batch, columns)))

        run = lambda: np.asarray(loop(a, b))  # noqa: E731
    elif backend == "torch":
        import torch

        a_t, b_t = torch.from_numpy(a), torch.from_numpy(b)

        def run():
            with torch.no_grad():
                total = torch.zeros((batch, columns))
                for i in range(steps):
                    total = total + (a_t + i) @ b_t
                return total.numpy()

    else:
        run = lambda: [a @ b for _ in range(steps)]  # noqa: E731
    seconds = interleaved_medians({"peak": run}, repeats)["peak"]
    return 2.0 * batch * rows * columns * steps / seconds / 1e9


# ---------------------------------------------------------------- measures
def peak_of(batch, units, repeats, timesteps=100):
    """The matmul peak GFLOP/s for a cell of `blocks` gate blocks, as a function."""

    def peak(blocks):
        return matmul_peak(batch, FEATURES + units, blocks * units, timesteps, repeats)

    return peak


def measure_training(cells, units, repeats):
    rows = []
    x, y = _inputs(64, 100)
    for name in cells:
        ours, builtin, kwargs, _ = CELLS[name]
        models = {"ours": _model(ours, units, 100, **kwargs)}
        models["keras"] = _model(builtin, units, 100, **kwargs)
        medians = interleaved_medians(
            {key: (lambda m=m: m.train_on_batch(x, y)) for key, m in models.items()}, repeats
        )
        rows.append(_row(name, "train", f"B=64 T=100 H={units}", medians))
    return rows


def measure_inference(cells, batch, units, timesteps, repeats, measure, peak=None):
    rows = []
    x, _ = _inputs(batch, timesteps)
    for name in cells:
        ours, builtin, kwargs, blocks = CELLS[name]
        forwards = {
            "ours": compiled_forward(_model(ours, units, timesteps, **kwargs)),
            "keras": compiled_forward(_model(builtin, units, timesteps, **kwargs)),
        }
        medians = interleaved_medians({k: (lambda f=f: f(x)) for k, f in forwards.items()}, repeats)
        row = _row(name, measure, f"B={batch} T={timesteps} H={units}", medians)
        if peak is not None:
            flops = 2.0 * batch * (FEATURES + units) * blocks * units * timesteps
            row["ours_gflops"] = flops / medians["ours"] / 1e9
            row["keras_gflops"] = flops / medians["keras"] / 1e9
            row["peak_gflops"] = peak(blocks)
            row["ours_of_peak"] = row["ours_gflops"] / row["peak_gflops"]
            row["keras_of_peak"] = row["keras_gflops"] / row["peak_gflops"]
        rows.append(row)
    return rows


def _row(cell, measure, sizes, medians):
    return {
        "cell": cell,
        "measure": measure,
        "sizes": sizes,
        "ours_ms": medians["ours"] * 1e3,
        "keras_ms": medians["keras"] * 1e3,
        "ratio": medians["ours"] / medians["keras"],
    }


def memory_child(cell, implementation, units):
    """Runs in a subprocess: trains a few steps and prints its peak memory."""
    ours, builtin, kwargs, _ = CELLS[cell]
    layer_class = ours if implementation == "ours" else builtin
    x, y = _inputs(64, 100)
    before = peak_rss_mb()
    model = _model(layer_class, units, 100, **kwargs)
    for _ in range(3):
        model.train_on_batch(x, y)
    after = peak_rss_mb()
    print(json.dumps({"peak_mb": after, "growth_mb": after - before}))


def peak_rss_mb():
    """This process's peak resident set size in MB.

    Linux's `VmHWM` where available: unlike `getrusage`'s `ru_maxrss`, it
    starts afresh in a new program rather than inheriting the parent's peak.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def measure_memory(cells, units):
    rows = []
    for name in cells:
        row = {"cell": name, "measure": "train memory", "sizes": f"B=64 T=100 H={units}"}
        for implementation in ("ours", "keras"):
            command = ["-m", "benchmarks.rnn", "--memory-child", name, implementation]
            result = subprocess.run(
                [sys.executable, *command, "--units", str(units)],
                capture_output=True,
                text=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
                check=True,
            )
            report = json.loads(result.stdout.strip().splitlines()[-1])
            row[f"{implementation}_peak_mb"] = report["peak_mb"]
            row[f"{implementation}_growth_mb"] = report["growth_mb"]
        row["ratio"] = row["ours_peak_mb"] / row["keras_peak_mb"]
        rows.append(row)
    return rows


# ------------------------------------------------------------------- peers
#: The peer libraries `--peers` may name: the module that times each in a process of its own.
PEERS = {"torch": "benchmarks.torch_peer"}
PEER_LABELS = {"keras": "Keras", "torch": "PyTorch"}


def training_step_flops(batch, timesteps, features, units, blocks):
    """Matrix-product FLOPs of one training step of `Input -> recurrent layer -> Dense(1)`.

    Forward: at each of the T steps the input projection (B, D) @ (D, k H)
    and the recurrent projection (B, H) @ (H, k H), 2 FLOPs a multiply-add,
    so 2 B (D + H) k H a step for k gate blocks (1 SimpleRNN, 4 LSTM, 3 GRU),
    then the head (B, H) @ (H, 1): 2 B H. Backward: each product
    (M, K) @ (K, N) costs two of its size, (M, N) @ (N, K) for the gradient
    of its left operand and (K, M) @ (M, N) for its weights'. So a step is
    3 x (2 B T (D + H) k H + 2 B H). Elementwise gate arithmetic and Adam
    are left out; the gradient of the inputs x, which a framework may skip,
    is counted, at most D / (3 (D + H)) of the total (7% at D=32, H=128).

    Args:
        batch, timesteps, features, units: B, T, D and H.
        blocks: k, the gate blocks of the cell.

    Returns:
        The FLOPs, a float.
    """
    forward = 2.0 * batch * timesteps * (features + units) * blocks * units
    forward += 2.0 * batch * units
    return 3.0 * forward


def tensorflow_threads():
    """The intra-op threads TensorFlow uses: its setting, else the CPUs it may run on."""
    import tensorflow as tf

    configured = tf.config.threading.get_intra_op_parallelism_threads()
    if configured:
        return configured
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def tensorflow_matmul_peak(size=2048, repeats=5):
    """GFLOP/s of a float32 `size x size` `tf.matmul`: the fastest of `repeats` after a warm-up."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.constant(rng.normal(size=(size, size)).astype("float32"))
    b = tf.constant(rng.normal(size=(size, size)).astype("float32"))
    tf.matmul(a, b).numpy()
    fastest = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        tf.matmul(a, b).numpy()
        fastest = min(fastest, time.perf_counter() - start)
    return 2.0 * size**3 / fastest / 1e9


def tensorflow_call_floor(timesteps, calls=200):
    """Milliseconds of one call of a `tf.function` that only doubles a (1, T, D) input.

    The fixed cost of calling a TensorFlow graph from Python, which every
    TensorFlow inference row pays once per call: the floor of the B=1 rows.
    The median of `calls` calls after a warm-up.
    """
    import tensorflow as tf

    x = _inputs(1, timesteps)[0]
    function = tf.function(lambda x: x * 2.0)
    for _ in range(20):
        function(x).numpy()
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        function(x).numpy()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds) * 1e3


class PeerProcess:
    """A peer library's timing process, asked one JSON line at a time.

    Args:
        peer: a key of `PEERS`.
        threads: the threads the peer may use.
    """

    def __init__(self, peer, threads):
        if peer not in PEERS:
            raise ValueError(f"Expected peer to be one of {sorted(PEERS)}. Received: peer={peer!r}")
        self.peer = peer
        self.process = subprocess.Popen(
            [sys.executable, "-m", PEERS[peer], "--threads", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def ask(self, request):
        """Sends `request` (a dict) and returns the peer's answer (a dict)."""
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise RuntimeError(
                f"The {self.peer} peer process ended (exit code {code}) on the request {request}; "
                "its error is above."
            )
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def alternating_medians(functions, peers, rounds, calls=1, warmup=2):
    """Median seconds a call of each function here and of each peer's model.

    Each of `rounds` rounds times `calls` calls of every function of this
    process, then asks every peer process for `calls` timed calls of its
    model, so that one process computes at a time and all see the same load.
    """
    for function in functions.values():
        for _ in range(warmup):
            function()
    times = {name: [] for name in [*functions, *peers]}
    for _ in range(rounds):
        for name, function in functions.items():
            for _ in range(calls):
                start = time.perf_counter()
                function()
                times[name].append(time.perf_counter() - start)
        for name, process in peers.items():
            times[name] += process.ask({"calls": calls})["seconds"]
    return {name: statistics.median(values) for name, values in times.items()}


def measure_peers(
    cells,
    units=(128,),
    rounds=9,
    peers=("torch",),
    train_batch=64,
    infer_batches=(1, 256),
    timesteps=100,
    calls_at_batch_1=20,
    peak_size=2048,
):
    """Times ours, Keras's built-in layers and the `peers`' layers, alternating.

    Args:
        cells: names of `CELLS`.
        units: the hidden sizes H to measure.
        rounds: the alternating rounds; each row holds the medians.
        peers: keys of `PEERS`.
        train_batch: B of the training step.
        infer_batches: the batch sizes of the inference rows.
        timesteps: T.
        calls_at_batch_1: calls per round at inference B=1, where a call
            takes about a millisecond and a single one is mostly scheduling noise.
        peak_size: the side of the matrices of the matmul peak.

    Returns:
        `(rows, run)`: a dict a row, with `{name}_ms` for "ours", "keras" and
        each peer, `ratio` = ours / the fastest peer and, for training rows,
        `step_gflop` and `{name}_of_peak`; and a dict of the run's conditions
        (`peak_gflops`, `threads`, `peer_threads`, `load`, `peers`).
    """
    threads = tensorflow_threads()
    load_before = os.getloadavg()[0]
    peak = tensorflow_matmul_peak(peak_size)
    rows = []
    peer_threads = {}
    with contextlib.ExitStack() as stack:
        processes = {peer: stack.enter_context(PeerProcess(peer, threads)) for peer in peers}
        for name in cells:
            ours_class, builtin_class, kwargs, blocks = CELLS[name]
            for hidden in units:
                measures = [("train", train_batch)]
                measures += [(f"infer B={batch}", batch) for batch in infer_batches]
                for measure, batch in measures:
                    mode = "train" if measure == "train" else "infer"
                    functions = {
                        "ours": _timed_call(ours_class, kwargs, mode, batch, timesteps, hidden),
                        "keras": _timed_call(builtin_class, kwargs, mode, batch, timesteps, hidden),
                    }
                    request = {"cell": name, "mode": mode, "batch": batch}
                    request.update(timesteps=timesteps, features=FEATURES, units=hidden)
                    for peer, process in processes.items():
                        peer_threads[peer] = process.ask(request)["threads"]
                    calls = calls_at_batch_1 if (mode, batch) == ("infer", 1) else 1
                    medians = alternating_medians(functions, processes, rounds, calls)
                    sizes = f"B={batch} T={timesteps} H={hidden}"
                    row = {"cell": name, "measure": measure, "sizes": sizes}
                    row.update({f"{key}_ms": seconds * 1e3 for key, seconds in medians.items()})
                    fastest_peer = min(row[f"{key}_ms"] for key in ("keras", *peers))
                    row["ratio"] = row["ours_ms"] / fastest_peer
                    if mode == "train":
                        flops = training_step_flops(batch, timesteps, FEATURES, hidden, blocks)
                        row["step_gflop"] = flops / 1e9
                    rows.append(row)
                    print(_peer_line(row, ["keras", *peers]), flush=True)
    # A load spike during one measure of the peak would lower it: the best of both.
    peak = max(peak, tensorflow_matmul_peak(peak_size))
    call_floor_ms = tensorflow_call_floor(timesteps)
    for row in rows:
        if "step_gflop" in row:
            for key in ("ours", "keras", *peers):
                # GFLOP / (GFLOP/s x ms / 1000): the share of the peak the step reached.
                row[f"{key}_of_peak"] = row["step_gflop"] / (peak * row[f"{key}_ms"] / 1e3)
    run = {
        "peak_gflops": peak,
        "peak_size": peak_size,
        "call_floor_ms": call_floor_ms,
        "threads": threads,
        "peer_threads": peer_threads,
        "load": (load_before, os.getloadavg()[0]),
        "peers": list(peers),
    }
    return rows, run


def _timed_call(layer_class, kwargs, mode, batch, timesteps, units):
    """One training step (`mode="train"`) or compiled forward call of a new model."""
    x, y = _inputs(batch, timesteps)
    model = _model(layer_class, units, timesteps, **kwargs)
    if mode == "train":
        return lambda: model.train_on_batch(x, y)
    forward = compiled_forward(model)
    return lambda: forward(x)


def _peer_line(row, peers):
    times = "  ".join(f"{key} {row[f'{key}_ms']:9.3f} ms" for key in ["ours", *peers])
    return (
        f"{row['cell']:<10} {row['measure']:<12} {row['sizes']:<20} {times}  "
        f"ratio {row['ratio']:.2f}"
    )


# ----------------------------------------------------------------- reports
def machine(policy=None):
    """The machine and software the run measured (and the dtype policy, if one was set)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    backend = keras.backend.backend()
    versions = [f"keras {keras.__version__}"]
    packages = {"tensorflow": ["tensorflow"], "jax": ["jax", "jaxlib"], "torch": ["torch"]}
    for package in packages.get(backend, []):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{package} {importlib.metadata.version(package)}")
    versions.append(f"Python {platform.python_version()}")
    described = (
        f"{model}, {os.cpu_count()} cores, Keras backend `{backend}` "
        f"({', '.join(versions)}), {platform.system()}"
    )
    return described + (f", Keras dtype policy `{policy}`" if policy else "")


def _fmt(value, digits=2):
    return "" if value is None else f"{value:.{digits}f}"


def markdown(rows, memory_rows, description):
    lines = [
        f"Measured on {description}. Medians of interleaved repeats after warm-up; "
        "ratio = ours / built-in (below 1: ours is faster).",
        "",
        "| cell | measure | sizes | ours ms | Keras ms | ratio | target |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        target = TARGETS.get(row["measure"].split(" H=")[0])
        target = "" if target is None else f"<= {target}"
        lines.append(
            f"| {row['cell']} | {row['measure']} | {row['sizes']} | {_fmt(row['ours_ms'])} | "
            f"{_fmt(row['keras_ms'])} | {_fmt(row['ratio'])} | {target} |"
        )
    loop_rows = [row for row in rows if "peak_gflops" in row]
    if loop_rows:
        lines += [
            "",
            "Recurrent-loop throughput of the forward calls (target: ours >= 60% of the "
            "matmul peak at H >= 512); peak = the faster of a plain and an XLA-compiled loop "
            "(on JAX, a `jax.jit` loop; on torch, an eager loop) of T matrix products of the "
            "same sizes. Keras/peak is "
            "also the lowest ratio ours / Keras that the matrix products allow.",
            "",
            "| cell | sizes | ours GFLOP/s | Keras GFLOP/s | matmul peak GFLOP/s | ours/peak "
            "| Keras/peak |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for row in loop_rows:
            lines.append(
                f"| {row['cell']} | {row['sizes']} | {_fmt(row['ours_gflops'], 1)} | "
                f"{_fmt(row['keras_gflops'], 1)} | {_fmt(row['peak_gflops'], 1)} | "
                f"{row['ours_of_peak']:.0%} | {row['keras_of_peak']:.0%} |"
            )
    if memory_rows:
        lines += [
            "",
            "Peak memory of a training step (peak resident set size of a fresh process "
            "after 3 steps; growth = over building the model and those steps, after the imports).",
            "",
            "| cell | sizes | ours MB | Keras MB | ours growth MB | Keras growth MB |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for row in memory_rows:
            lines.append(
                f"| {row['cell']} | {row['sizes']} | {row['ours_peak_mb']:.0f} | "
                f"{row['keras_peak_mb']:.0f} | {row['ours_growth_mb']:.0f} | "
                f"{row['keras_growth_mb']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def peers_markdown(rows, run, description, note=""):
    """The `rnn-peers` table of `measure_peers`' rows and run conditions."""
    peers = ["keras", *run["peers"]]
    versions = []
    for peer in run["peers"]:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{PEER_LABELS[peer]} {importlib.metadata.version(peer)}")
    threads = ", ".join(
        f"{PEER_LABELS[peer]} with `set_num_threads({count})`"
        for peer, count in run["peer_threads"].items()
    )
    load = "1-minute load average {:.1f} at the start, {:.1f} at the end".format(*run["load"])
    lines = [
        f"Measured on {description}; {', '.join(versions)}; {load}{note}. "
        f"{threads} (the {run['threads']} threads TensorFlow uses) in a process of its own, "
        "eager; each round times ours, then Keras's layer, then the peer's, one process "
        "computing at a time; medians of the rounds after warm-up. "
        "ratio = ours / the faster peer (below 1: ours is faster). "
        f"A call of an empty `tf.function` on the B=1 input takes {run['call_floor_ms']:.2f} ms "
        "here: the fixed cost of calling a TensorFlow graph, part of every TensorFlow "
        "inference time.",
        "",
        "| cell | measure | sizes | ours ms | "
        + " | ".join(f"{PEER_LABELS[peer]} ms" for peer in peers)
        + " | ours / faster peer |",
        "|---|---|---|" + "---:|" * (len(peers) + 2),
    ]
    for row in rows:
        times = " | ".join(_fmt(row[f"{key}_ms"]) for key in ["ours", *peers])
        lines.append(
            f"| {row['cell']} | {row['measure']} | {row['sizes']} | {times} | "
            f"{_fmt(row['ratio'])} |"
        )
    train_rows = [row for row in rows if "step_gflop" in row]
    if train_rows:
        lines += [
            "",
            f"Training step's share of the matmul peak, {run['peak_gflops']:.1f} GFLOP/s (the "
            f"fastest float32 {run['peak_size']} x {run['peak_size']} `tf.matmul`, before or "
            "after the rounds): the step's matrix-product FLOPs "
            "3 x (2 B T (D + H) k H + 2 B H), D=32, k gate blocks (1 SimpleRNN, 4 LSTM, 3 GRU), "
            "forward and backward, / (peak x step time).",
            "",
            "| cell | sizes | step GFLOP | ours | "
            + " | ".join(PEER_LABELS[peer] for peer in peers)
            + " |",
            "|---|---|" + "---:|" * (len(peers) + 2),
        ]
        for row in train_rows:
            shares = " | ".join(f"{row[f'{key}_of_peak']:.0%}" for key in ["ours", *peers])
            lines.append(f"| {row['cell']} | {row['sizes']} | {row['step_gflop']:.3f} | {shares} |")
    return "\n".join(lines) + "\n"


def write_csv(path, rows):
    keys = []
    for row in rows:
        keys += [key for key in row if key not in keys]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def plot(path, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratio_rows = [row for row in rows if not row["measure"].startswith("T ")]
    scaling = [row for row in rows if row["measure"].startswith("T ")]
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    labels = [f"{r['cell']} {r['measure']} {r['sizes']}" for r in ratio_rows]
    axes[0].barh(range(len(ratio_rows)), [r["ratio"] for r in ratio_rows], color="tab:blue")
    axes[0].axvline(1.0, color="black", linewidth=1)
    axes[0].set_yticks(range(len(ratio_rows)), labels, fontsize=7)
    axes[0].invert_yaxis()
    axes[0].set_xlabel("time ours / Keras built-in (lower is better)")
    for cell in CELLS:
        points = [r for r in scaling if r["cell"] == cell]
        if not points:
            continue
        steps = [int(r["sizes"].split("T=")[1].split()[0]) for r in points]
        axes[1].loglog(steps, [r["ours_ms"] for r in points], "o-", label=f"{cell} ours")
        axes[1].loglog(steps, [r["keras_ms"] for r in points], "x--", label=f"{cell} Keras")
    axes[1].set_xlabel("timesteps T (B=64, H=128)")
    axes[1].set_ylabel("forward ms")
    axes[1].legend(fontsize=7)
    axes[1].set_title("scaling with T (linear is slope 1)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


# -------------------------------------------------------------------- main
def default_out(backend=None):
    """Where a run on `backend` writes its results: one folder per non-default backend."""
    backend = backend or keras.backend.backend()
    results = ROOT / "benchmarks" / "results"
    return results if backend == "tensorflow" else results / backend


def readme_block(backend=None):
    """The README block a run on `backend` refreshes."""
    backend = backend or keras.backend.backend()
    return "rnn" if backend == "tensorflow" else f"rnn-{backend}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--repeats", type=int, help="repeats per measure (default 9, quick 5)")
    parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated cell names")
    parser.add_argument("--out", default=str(default_out()))
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument(
        "--peers",
        help=f"comma-separated peer libraries ({', '.join(PEERS)}): measure against them instead",
    )
    parser.add_argument(
        "--h", type=int, nargs="+", help="hidden sizes H of the --peers run (default 128)"
    )
    parser.add_argument("--note", help="appended to the --peers table's first line")
    parser.add_argument(
        "--policy",
        help="Keras dtype policy of ours and Keras's layers, e.g. mixed_bfloat16 "
        "(default: float32); PyTorch peers stay float32",
    )
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--units", type=int, default=128, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(*args.memory_child, args.units)
        return

    cells = [name for name in args.cells.split(",") if name]
    if args.policy:
        if args.update_readme:
            # The README's blocks are float32 runs.
            parser.error(
                "Expected --policy without --update-readme. "
                f"Received: policy={args.policy!r}, update_readme=True"
            )
        keras.config.set_dtype_policy(args.policy)
    repeats = args.repeats or (5 if args.quick else 9)
    if not args.peers and (args.h or args.note):
        parser.error(
            f"Expected --h and --note with --peers only. Received: h={args.h}, note={args.note!r}"
        )
    if args.peers:
        units = args.h or [128]
        peers = [name for name in args.peers.split(",") if name]
        unknown = [name for name in peers if name not in PEERS]
        if unknown:
            parser.error(f"Expected --peers among {', '.join(PEERS)}. Received: peers={args.peers}")
        backend = keras.backend.backend()
        if backend != "tensorflow":
            # The peer gets TensorFlow's thread count and the peak is TensorFlow's matmul.
            parser.error(f"Expected the TensorFlow backend with --peers. Received: {backend=}")
        if any(hidden < 1 for hidden in units):
            parser.error(f"Expected hidden sizes >= 1. Received: h={units}")
        description = machine(args.policy)
        print(description, flush=True)
        rows, run = measure_peers(cells, units, repeats, peers)
        table = peers_markdown(rows, run, description, args.note or "")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rnn-peers.md").write_text(table)
        write_csv(out / "rnn-peers.csv", rows)
        print(table)
        if args.update_readme:
            write_block("rnn-peers", table)
        return
    train_units = (128,) if args.quick else (128, 512)
    steps = (10, 100) if args.quick else (10, 100, 1000)
    widths = (64, 256) if args.quick else (64, 256, 1024)
    description = machine(args.policy)
    print(description, flush=True)
    rows = []
    for units in train_units:
        rows += measure_training(cells, units, max(3, repeats // (1 if units < 512 else 2)))
    # A call at batch 1 takes about a millisecond: many more repeats cost little
    # and steady a median that scheduling noise moves by a third.
    rows += measure_inference(
        cells, 1, 128, 100, 20 * repeats, "infer B=1", peak=peak_of(1, 128, 20 * repeats)
    )
    rows += measure_inference(
        cells, 256, 128, 100, repeats, "infer B=256", peak=peak_of(256, 128, repeats)
    )
    for timesteps in steps:
        rows += measure_inference(cells, 64, 128, timesteps, repeats, f"T {timesteps}")
    for units in widths:
        rows += measure_inference(
            cells,
            64,
            units,
            100,
            max(3, repeats // 2),
            f"H {units}",
            peak=peak_of(64, units, repeats),
        )
    for row in rows:
        print(
            f"{row['cell']:<10} {row['measure']:<12} {row['sizes']:<20} "
            f"ours {row['ours_ms']:9.3f} ms  keras {row['keras_ms']:9.3f} ms  "
            f"ratio {row['ratio']:.2f}",
            flush=True,
        )
    memory_rows = []
    if not args.no_memory:
        for units in train_units:
            memory_rows += measure_memory(cells, units)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(rows, memory_rows, description)
    (out / "rnn.md").write_text(table)
    write_csv(out / "rnn.csv", rows + memory_rows)
    plot(out / "rnn.png", rows)
    print(table)
    if args.update_readme:
        write_block(readme_block(), table)


if __name__ == "__main__":
    main()
