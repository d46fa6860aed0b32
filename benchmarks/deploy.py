"""Latency and file size of the deployment formats, side by side with PyTorch eager.

For `Input -> LSTM(H) -> Dense(1)` and the same with a GRU (H=128 and D=32
features by default), one run exports the model as a SavedModel (timed
through `session.run` of TensorFlow's C++ session: `serving_default`, its
`step` signature, and `serving_xla`), as LiteRT files (float32, float16 and
int8 weights; whole sequence and streaming step), as ONNX files (whole
sequence and streaming step, run by onnxruntime), and converts the
recurrent layer to PyTorch (`keras_seqcells.to_torch`, with a
`torch.nn.Linear` head) run eagerly. Every runtime gets 2 threads.
Measured: one step at batch 1 (the streaming forms), the whole sequence of
T=100 steps at batch 1 and at batch 64, and the file size. The runtimes'
repeats are interleaved (`benchmarks.rnn.interleaved_medians`), so a change
of the machine's load touches them alike; before timing, each runtime's
answer is checked against Keras's (1e-4 for float32, looser for the
quantised files) so no row times a wrong computation.

    python -m benchmarks.deploy --quick
    python -m benchmarks.deploy --update-readme

A format whose export is not available (such as LiteRT before
`keras_seqcells.litert`, or without `ai_edge_litert`) gets empty cells and a
note saying why; no number stands in for it.
"""

import argparse
import contextlib
import os
import pathlib
import tempfile

import keras
import numpy as np

import keras_seqcells
from benchmarks.readme_blocks import load_sentence, write_block
from benchmarks.rnn import interleaved_medians, machine

THREADS = 2
CELLS = ("LSTM", "GRU")
COLUMNS = ("step B=1", "whole B=1", "whole B=64")
LITERT_FORMS = (None, "float16", "int8")
# Largest difference from Keras's answer accepted before timing a runtime.
CHECK_TOLERANCES = {None: 1e-4, "float16": 2e-2, "int8": 2e-1}


def build_model(cell, units, features, seed=0):
    """`Input((None, features)) -> keras_seqcells.<cell>(units) -> Dense(1)`."""
    keras.utils.set_random_seed(seed)
    layer = getattr(keras_seqcells, cell)(units, name="recurrent")
    inputs = keras.Input((None, features), name="sequence")
    return keras.Model(inputs, keras.layers.Dense(1, name="score")(layer(inputs)))


def _size(path):
    path = pathlib.Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


class _Runtime:
    """One row: `functions[column](inputs)` returns the answer of `inputs`."""

    def __init__(self, name, size, functions, quantize=None):
        self.name = name
        self.size = size
        self.functions = functions
        self.quantize = quantize


def _saved_model_runtimes(model, folder):
    import tensorflow as tf
    from tensorflow.python.util import deprecation

    from keras_seqcells.serving import export

    path = export(model, os.path.join(folder, "saved_model"), xla=True)
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=THREADS, inter_op_parallelism_threads=1
    )
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph, config=config)
    with graph.as_default(), deprecation.silence():
        meta_graph = tf.compat.v1.saved_model.loader.load(
            session, [tf.saved_model.SERVING], os.fspath(path)
        )
    signatures = dict(meta_graph.signature_def)

    def runner(name):
        signature = signatures[name]
        fetches = {key: info.name for key, info in signature.outputs.items()}
        feeds = {key: info.name for key, info in signature.inputs.items()}

        def run(arrays):
            return session.run(fetches, {feeds[key]: value for key, value in arrays.items()})

        return run

    def whole(name):
        run = runner(name)
        return lambda x: run({"sequence": x})["score"]

    rows = []
    size = _size(path)
    step = None
    if "step" in signatures and "initial_state" in signatures:
        run_step = runner("step")
        state = runner("initial_state")({"batch_size": np.int32(1)})
        step_input = next(key for key in signatures["step"].inputs if key not in state)

        def step(x):
            return run_step({step_input: x[:, 0], **state})["score"]

    rows.append(
        _Runtime(
            "SavedModel `serving_default` (`step`)",
            size,
            {"step B=1": step, "whole B=1": whole("serving_default"), "whole B=64": None},
        )
    )
    rows[-1].functions["whole B=64"] = rows[-1].functions["whole B=1"]
    xla = whole("serving_xla")
    rows.append(
        _Runtime(
            "SavedModel `serving_xla`",
            size,
            {"step B=1": None, "whole B=1": xla, "whole B=64": xla},
        )
    )
    return rows, [session]


def _onnx_runtime(model, folder):
    import onnxruntime

    from keras_seqcells.onnx_export import export_onnx

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    sessions = {}
    sizes = []
    for streaming in (False, True):
        path = export_onnx(
            model,
            os.path.join(folder, f"model{'_step' if streaming else ''}.onnx"),
            streaming=streaming,
        )
        sessions[streaming] = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        sizes.append(_size(path))
    step_session = sessions[True]
    states = {
        i.name: np.zeros((1, i.shape[1]), "float32")
        for i in step_session.get_inputs()
        if i.name.startswith("state")
    }
    if not states:
        raise ValueError(f"Expected state inputs in the streaming ONNX graph. Received: {states}")

    def whole(x):
        return sessions[False].run(["outputs"], {"inputs": x})[0]

    def step(x):
        return step_session.run(["outputs"], {"inputs": x, **states})[0]

    return _Runtime(
        "onnxruntime", sizes, {"step B=1": step, "whole B=1": whole, "whole B=64": whole}
    )


def _litert_runtimes(model, folder, timesteps):
    from ai_edge_litert.interpreter import Interpreter

    from keras_seqcells.litert import export_litert

    rows = []
    for quantize in LITERT_FORMS:
        label = quantize or "float32"
        runners = {}
        sizes = []
        # LiteRT files fix their batch size: one file per batch size, the
        # size column giving the batch-1 file and the step file.
        for form, batch in (("whole B=1", 1), ("whole B=64", 64), ("step B=1", 1)):
            streaming = form.startswith("step")
            path = export_litert(
                model,
                os.path.join(folder, f"model_{label}_{form.replace(' ', '_')}.tflite"),
                streaming=streaming,
                sequence_length=None if streaming else timesteps,
                quantize=quantize,
                batch_size=batch,
            )
            interpreter = Interpreter(model_path=str(path), num_threads=THREADS)
            runners[form] = interpreter.get_signature_runner()
            if form != "whole B=64":
                sizes.append(_size(path))

        def call(runner, x):
            details = runner.get_input_details()
            feed = {}
            for name, info in details.items():
                if "state" in name:
                    feed[name] = np.zeros((x.shape[0], *info["shape"][1:]), info["dtype"])
                else:
                    # A step file takes the step without its time axis.
                    feed[name] = x.reshape(tuple(info["shape"]))
            # The score is the one output of shape (batch, 1): files whose outputs
            # are not named by the model (output_0, ...) still give the states too.
            (answer,) = [
                value
                for name, value in runner(**feed).items()
                if "state" not in name and value.shape == (x.shape[0], 1)
            ]
            return answer

        rows.append(
            _Runtime(
                f"LiteRT {label}",
                sizes,
                {form: (lambda x, r=runner: call(r, x)) for form, runner in runners.items()},
                quantize=quantize,
            )
        )
    return rows


def _torch_runtime(model, folder, cell):
    import torch

    torch.set_num_threads(THREADS)
    recurrent = keras_seqcells.to_torch(model.get_layer("recurrent")).eval()
    kernel, bias = (np.asarray(w) for w in model.get_layer("score").get_weights())
    head = torch.nn.Linear(kernel.shape[0], kernel.shape[1]).eval()
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(kernel.T.copy()))
        head.bias.copy_(torch.from_numpy(bias))
    path = os.path.join(folder, "model.pt")
    torch.save({"recurrent": recurrent.state_dict(), "head": head.state_dict()}, path)
    units = recurrent.hidden_size
    zeros = torch.zeros(1, 1, units)
    state = (zeros, zeros.clone()) if cell == "LSTM" else zeros

    def whole(x):
        with torch.inference_mode():
            output, _ = recurrent(torch.from_numpy(x))
            return head(output[:, -1]).numpy()

    def step(x):
        with torch.inference_mode():
            output, _ = recurrent(torch.from_numpy(x), state)
            return head(output[:, -1]).numpy()

    return _Runtime(
        "PyTorch eager (`to_torch`)",
        _size(path),
        {"step B=1": step, "whole B=1": whole, "whole B=64": whole},
    )


def _inputs(timesteps, features, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "step B=1": rng.uniform(-1, 1, (1, 1, features)).astype("float32"),
        "whole B=1": rng.uniform(-1, 1, (1, timesteps, features)).astype("float32"),
        "whole B=64": rng.uniform(-1, 1, (64, timesteps, features)).astype("float32"),
    }


def _first_line(error):
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def runtimes(model, folder, cell, timesteps):
    """The rows of one model, and `{row name: why it did not run}` for those that did not.

    Only a runtime or export that is not installed (ImportError), and a LiteRT
    export that refuses the model, become notes; any other error is raised.
    """
    rows, notes, sessions = [], {}, []
    try:
        saved_model_rows, sessions = _saved_model_runtimes(model, folder)
        rows += saved_model_rows
    except ImportError as error:
        notes["SavedModel"] = _first_line(error)
    try:
        rows += _litert_runtimes(model, folder, timesteps)
    except (ImportError, ValueError, NotImplementedError) as error:
        notes["LiteRT"] = _first_line(error)
    try:
        rows.append(_onnx_runtime(model, folder))
    except ImportError as error:
        notes["onnxruntime"] = _first_line(error)
    try:
        rows.append(_torch_runtime(model, folder, cell))
    except ImportError as error:
        notes["PyTorch eager"] = _first_line(error)
    return rows, notes, sessions


def _check(row, column, x, model):
    """Raises unless the row's answer on `x` is Keras's (the step: on the first step)."""
    answer = np.asarray(row.functions[column](x)).reshape(-1)
    expected = np.asarray(model(x, training=False)).reshape(-1)
    error = float(np.max(np.abs(answer - expected)))
    tolerance = CHECK_TOLERANCES[row.quantize]
    if not error <= tolerance:
        raise ValueError(
            f"Expected {row.name} ({column}) within {tolerance} of Keras's answer. "
            f"Received: largest difference {error:.3g}"
        )


def measure(cells=CELLS, units=128, features=32, timesteps=100, repeats=30, warmup=3):
    """Times every runtime of every cell; returns `(results, notes, load averages)`.

    `results` is a list of dicts (`cell`, `runtime`, `size` in bytes (a list of
    the whole and the step file where they differ) and each column of `COLUMNS`:
    median seconds or None where the runtime has no such form).
    """
    results, notes, loads = [], {}, [os.getloadavg()[0]]
    inputs = _inputs(timesteps, features)
    for cell in cells:
        model = build_model(cell, units, features)
        with tempfile.TemporaryDirectory() as folder:
            rows, cell_notes, sessions = runtimes(model, folder, cell, timesteps)
            for name, why in cell_notes.items():
                notes.setdefault(name, why)
            for row in rows:
                for column, function in row.functions.items():
                    if function is not None:
                        _check(row, column, inputs[column], model)
            medians = {}
            for column in COLUMNS:
                functions = {
                    row.name: (lambda f=row.functions[column], x=inputs[column]: f(x))
                    for row in rows
                    if row.functions[column] is not None
                }
                medians[column] = interleaved_medians(functions, repeats, warmup=warmup)
                loads.append(os.getloadavg()[0])
            for session in sessions:
                session.close()
        for row in rows:
            results.append(
                {
                    "cell": cell,
                    "runtime": row.name,
                    "size": row.size,
                    **{column: medians[column].get(row.name) for column in COLUMNS},
                }
            )
    return results, notes, loads


def _milliseconds(seconds):
    return "" if seconds is None else f"{1000 * seconds:.3f}"


def _kilobytes(size):
    sizes = size if isinstance(size, list) else [size]
    return " / ".join(f"{value / 1024:.0f}" for value in sizes)


def table(results, notes, loads, description, command, units, features, timesteps, repeats):
    """The markdown of the `deploy` block; its first line gives the load average."""
    quick = "; a quick run of few repeats, so noisy" if repeats < 10 else ""
    lines = [
        f"{load_sentence(loads)}{quick}.",
        "",
        f"`Input -> LSTM/GRU({units}) -> Dense(1)` on {features} features; medians of "
        f"{repeats} interleaved repeats, {THREADS} threads per runtime, on {description}. "
        f"Regenerate with `{command}`. Milliseconds; file size in KB (whole sequence / "
        "streaming step file where they are two).",
        "",
        f"| cell | runtime | step B=1 (ms) | T={timesteps} B=1 (ms) | T={timesteps} B=64 (ms) "
        "| file (KB) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in results:
        cells = " | ".join(_milliseconds(row[column]) for column in COLUMNS)
        lines.append(f"| {row['cell']} | {row['runtime']} | {cells} | {_kilobytes(row['size'])} |")
    if notes:
        lines.append("")
        for name, why in sorted(notes.items()):
            lines.append(f"- {name}: not measured ({why}).")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats (5)")
    parser.add_argument("--repeats", type=int, help="default: 30, or 5 with --quick")
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    parser.add_argument(
        "--update-readme", action="store_true", help="write the README's `deploy` block"
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (5 if args.quick else 30)
    options = dict(units=args.units, features=args.features, timesteps=args.timesteps)
    results, notes, loads = measure(
        cells=args.cells, repeats=repeats, warmup=1 if args.quick else 3, **options
    )
    command = "python -m benchmarks.deploy" + (" --quick" if args.quick else "")
    text = table(results, notes, loads, machine(), command, repeats=repeats, **options)
    if args.update_readme:
        write_block("deploy", text)
    print(text)
    return results


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
