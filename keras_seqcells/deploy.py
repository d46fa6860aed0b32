"""Export to a deployment format and check the file where only its runtime is installed.

The formats are a TensorFlow Serving SavedModel (`keras_seqcells.export`),
ONNX (`keras_seqcells.export_onnx`) and LiteRT (`export_litert` of
`keras_seqcells.litert`). `check_deployed` loads an ONNX or LiteRT file in
a fresh `python -I` process that imports only numpy and the runtime
(`onnxruntime` or `ai_edge_litert`), runs an example input there and, given
the Keras model, compares the answers with the model's.
"""

import json
import os
import pathlib
import tempfile

import numpy as np

from keras_seqcells._isolated import run_isolated

FORMATS = ("saved_model", "litert", "onnx")
QUANTIZATIONS = ("float16", "int8")
SUFFIXES = {"onnx": ".onnx", "litert": ".tflite"}

# Largest absolute difference allowed between the file's answers and Keras's,
# relative to max(1, |Keras's answer|). float32 files compute the same
# equations in another order (rounding only); float16 weights keep about 3
# significant digits; int8 weights (dynamic-range quantisation) about 2, and
# the errors of a recurrence add up over the steps of the example (5 steps).
TOLERANCES = {None: 1e-5, "float16": 1e-2, "int8": 1e-1}

# The example input: batch and time sizes where the file leaves them open.
EXAMPLE_BATCH = 2
EXAMPLE_TIMESTEPS = 5

_RUNNER = r"""
import json, sys
import numpy as np

kind, path, folder = sys.argv[1:4]
rng = np.random.default_rng(0)


def example(name, shape, dtype, streaming):
    shape = list(shape)
    if shape and shape[0] in (-1, None) or (shape and isinstance(shape[0], str)):
        shape[0] = 2
    for axis in range(1, len(shape)):
        if shape[axis] in (-1, None) or isinstance(shape[axis], str):
            shape[axis] = 1 if streaming else 5
    if "state" in name:
        return np.zeros(shape, dtype)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(1, 3, size=shape).astype(dtype)
    return rng.uniform(-1, 1, size=shape).astype(dtype)


if kind == "onnx":
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    numpy_types = {"tensor(float)": np.float32, "tensor(int64)": np.int64,
                   "tensor(int32)": np.int32, "tensor(double)": np.float64}
    streaming = any("state" in i.name for i in session.get_inputs())
    feed = {i.name: example(i.name, i.shape, numpy_types[i.type], streaming)
            for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    answers = dict(zip(names, session.run(None, feed)))
    quantization = "none"
else:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=1)
    signatures = interpreter.get_signature_list()
    key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
    runner = interpreter.get_signature_runner(key)
    details = runner.get_input_details()
    streaming = any("state" in name for name in details)
    feed = {}
    for name, info in details.items():
        shape = info.get("shape_signature", info["shape"])
        feed[name] = example(name, shape, info["dtype"], streaming)
    answers = runner(**feed)
    dtypes = {str(t["dtype"].__name__) for t in interpreter.get_tensor_details()}
    quantization = "int8" if "int8" in dtypes else "float16" if "float16" in dtypes else "none"

np.savez(f"{folder}/inputs.npz", **{f"i{n}": v for n, v in enumerate(feed.values())})
np.savez(f"{folder}/answers.npz", **{f"o{n}": v for n, v in enumerate(answers.values())})
print(json.dumps({"inputs": list(feed), "outputs": list(answers), "quantization": quantization}))
"""


class DeployCheckError(Exception):
    """An exported file that does not load, run, or give the Keras model's answers."""


def detect_format(path):
    """The deployment format of `path`, from its suffix.

    Args:
        path: A `.tflite` file, an `.onnx` file, or anything else, taken for a
            SavedModel folder (a model folder of versions, or one version)
            whose own check says what is wrong with it.

    Returns:
        `"litert"`, `"onnx"` or `"saved_model"`.

    Raises:
        FileNotFoundError: for a `.tflite` or `.onnx` path that does not exist.
    """
    path = pathlib.Path(os.fspath(path))
    for name, suffix in SUFFIXES.items():
        if path.suffix == suffix:
            if not path.is_file():
                raise FileNotFoundError(
                    f"Expected an existing {suffix} file. Received: path={str(path)!r}"
                )
            return name
    return "saved_model"


def check_format_options(format, quantize=None, streaming=False):
    """Raises a ValueError for a format or options that do not go together."""
    if format not in FORMATS:
        raise ValueError(f"Expected `format` to be one of {FORMATS}. Received: format={format!r}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(
            f"Expected `quantize` to be None or one of {QUANTIZATIONS}. "
            f"Received: quantize={quantize!r}"
        )
    if quantize is not None and format != "litert":
        raise ValueError(
            "Expected `quantize` only with format='litert' (the other formats keep float32). "
            f"Received: quantize={quantize!r}, format={format!r}"
        )
    if streaming and format == "saved_model":
        raise ValueError(
            "Expected `streaming` only with format='litert' or 'onnx' (a SavedModel already "
            f"holds a step signature where the model streams). Received: format={format!r}"
        )


def export_file(
    model,
    path,
    format,
    quantize=None,
    streaming=False,
    overwrite=False,
    sequence_length=None,
    batch_size=None,
):
    """Exports `model` as one ONNX or LiteRT file.

    Args:
        model: A Keras model of keras_seqcells layers (see `export_onnx` and
            `export_litert` for what each format takes).
        path: The file to write; it must end in `.onnx` or `.tflite`, the
            suffix that `detect_format` reads back.
        format: `"onnx"` or `"litert"`.
        quantize: None (float32), `"float16"` or `"int8"`; LiteRT only.
        streaming: Whether to export the one-step form with the states as
            inputs and outputs.
        overwrite: Whether an existing file may be replaced.
        sequence_length: None, or the fixed number of time steps of the
            whole-sequence form (LiteRT needs one where the model's input
            leaves it open).
        batch_size: None (the exporter's default: dynamic for ONNX, 1 for
            LiteRT) or the fixed batch size of a LiteRT file.

    Returns:
        The path of the written file (a `pathlib.Path`).

    Example:

    >>> model = keras.Sequential([keras.Input((None, 3)), keras_seqcells.GRU(4)])
    >>> export_file(model, "gru.onnx", "onnx")  # doctest: +SKIP
    PosixPath('gru.onnx')
    """
    check_format_options(format, quantize, streaming)
    if format == "saved_model":
        raise ValueError(
            "Expected format='onnx' or 'litert' (a SavedModel is a folder of versions: "
            "use keras_seqcells.export). Received: format='saved_model'"
        )
    if batch_size is not None and format != "litert":
        raise ValueError(
            "Expected `batch_size` only with format='litert' (ONNX keeps the batch dynamic). "
            f"Received: batch_size={batch_size!r}, format={format!r}"
        )
    path = pathlib.Path(os.fspath(path))
    if path.suffix != SUFFIXES[format]:
        raise ValueError(
            f"Expected a path ending in {SUFFIXES[format]} for format={format!r}. "
            f"Received: path={str(path)!r}"
        )
    if format == "onnx":
        from keras_seqcells.onnx_export import export_onnx

        return export_onnx(
            model,
            path,
            sequence_length=sequence_length,
            streaming=streaming,
            overwrite=overwrite,
        )
    from keras_seqcells.litert import export_litert

    options = {} if batch_size is None else {"batch_size": batch_size}
    return export_litert(
        model,
        path,
        streaming=streaming,
        sequence_length=sequence_length,
        quantize=quantize,
        overwrite=overwrite,
        **options,
    )


def run_in_runtime(path, format=None):
    """Runs an example input through an ONNX or LiteRT file in a fresh process.

    The process is `python -I` (no user site, no `PYTHONPATH`: keras_seqcells
    is not importable there) and imports only numpy and the runtime,
    `onnxruntime` or `ai_edge_litert`. Dimensions the file leaves open get
    `EXAMPLE_BATCH` examples of `EXAMPLE_TIMESTEPS` steps (one step for a
    streaming file, recognised by its `state` inputs); state inputs are
    zeros, float inputs uniform in [-1, 1], integer inputs 1 or 2 (token
    ids that every vocabulary of two or more words holds).

    Args:
        path: The `.onnx` or `.tflite` file.
        format: `"onnx"` or `"litert"`; by default from the suffix.

    Returns:
        A dict: `inputs` and `outputs` (`{name: array}`, in the file's order)
        and `quantization` (`"none"`, `"float16"` or `"int8"`, from the
        tensor types in the file).
    """
    format = format or detect_format(path)
    if format not in SUFFIXES:
        raise ValueError(
            f"Expected an .onnx or a .tflite file. Received: path={str(path)!r} ({format})"
        )
    with tempfile.TemporaryDirectory() as folder:
        arguments = [format, str(pathlib.Path(path).resolve()), folder]
        stdout = run_isolated(
            _RUNNER,
            arguments,
            folder,
            f"loading and running {path} in a fresh process with only the {format} runtime",
            DeployCheckError,
        )
        report = json.loads(stdout.strip().splitlines()[-1])
        with (
            np.load(f"{folder}/inputs.npz", allow_pickle=False) as inputs,
            np.load(f"{folder}/answers.npz", allow_pickle=False) as outs,
        ):
            report["inputs"] = {name: inputs[f"i{n}"] for n, name in enumerate(report["inputs"])}
            report["outputs"] = {name: outs[f"o{n}"] for n, name in enumerate(report["outputs"])}
    return report


def _is_state(name):
    return "state" in name


def keras_answers(model, inputs):
    """The Keras model's outputs (a list) for the non-state `inputs` of a file.

    A streaming file's first step from zero states equals the model on that
    one step, so the state inputs are left out (and a step input without its
    time axis gets one). A text model is compared from its token ids on
    (`keras_seqcells.text_export.numeric_model`), as its file takes them.
    """
    import keras

    from keras_seqcells import text_export

    # A text model's file takes token ids (and feature ids): compare with the
    # model from those ids on, its inputs matched by name.
    model, sidecar = text_export.numeric_model(model)
    if sidecar is not None and all(name in inputs for name in text_export.input_names(sidecar)):
        inputs = {name: inputs[name] for name in text_export.input_names(sidecar)}
    arrays = [value for name, value in inputs.items() if not _is_state(name)]
    if len(arrays) != len(model.inputs):
        raise DeployCheckError(
            f"Expected the file to take the model's {len(model.inputs)} input(s). "
            f"Received: inputs {[name for name in inputs if not _is_state(name)]}"
        )
    # A step file may take a step without its time axis (batch, features).
    arrays = [
        np.expand_dims(array, 1) if array.ndim == len(tensor.shape) - 1 else array
        for array, tensor in zip(arrays, model.inputs, strict=True)
    ]
    outputs = model(arrays[0] if len(arrays) == 1 else arrays, training=False)
    # A dict of outputs flattens in the order of `model.outputs` (sorted keys).
    outputs = keras.tree.flatten(outputs)
    return [np.asarray(output) for output in outputs]


def compare_answers(got, expected, tolerance):
    """Lines naming each output's largest difference; raises past `tolerance`.

    Args:
        got: `{name: array}` of the file's outputs (state outputs are skipped).
        expected: The Keras model's outputs, a list in the model's order.
        tolerance: Largest allowed `|got - expected| / max(1, |expected|)`.

    Returns:
        One line per compared output.
    """
    names = sorted(name for name in got if not _is_state(name))
    if len(names) != len(expected):
        # A file whose outputs are not named by the model (output_0, ...) also
        # gives the states: each expected output is the one output of its shape.
        matches = [[name for name in names if got[name].shape == want.shape] for want in expected]
        if not all(len(match) == 1 for match in matches):
            raise DeployCheckError(
                f"Expected {len(expected)} output(s) besides the states, or one output of "
                f"each shape {[want.shape for want in expected]}. Received: "
                f"{ {name: got[name].shape for name in names} }"
            )
        names = [match[0] for match in matches]
    lines = []
    for name, want in zip(names, expected, strict=True):
        answer = got[name]
        if answer.shape != want.shape:
            raise DeployCheckError(
                f"Expected output {name!r} of shape {want.shape}. Received: shape={answer.shape}"
            )
        error = float(np.max(np.abs(answer - want) / np.maximum(1.0, np.abs(want)), initial=0.0))
        if not error <= tolerance:
            raise DeployCheckError(
                f"Expected output {name!r} within {tolerance:g} of the Keras model's. "
                f"Received: largest relative difference {error:.3g}"
            )
        lines.append(f"output {name!r}: largest difference {error:.2g} (tolerance {tolerance:g})")
    return lines


def check_deployed(path, model=None, tolerance=None):
    """Checks an ONNX or LiteRT export where only its runtime is installed.

    The file is loaded and run on an example input in a fresh process (see
    `run_in_runtime`); given the Keras model, its answers must equal the
    model's on the same input: within `TOLERANCES` (1e-5 relative for
    float32; 1e-2 for float16 and 1e-1 for int8 LiteRT files), a streaming
    file on its first step from zero states.

    Args:
        path: The `.onnx` or `.tflite` file.
        model: None, or the Keras model the file was exported from.
        tolerance: None (by the file's quantisation), or the largest allowed
            difference relative to `max(1, |Keras's answer|)`.

    Returns:
        The lines of a report (what ran, and each output's difference).

    Raises:
        DeployCheckError: when the file does not load, run, or give the
            model's answers.
    """
    format = detect_format(path)
    report = run_in_runtime(path, format)
    quantization = report["quantization"]
    shapes = ", ".join(f"{name} {value.shape}" for name, value in report["inputs"].items())
    lines = [
        f"{format}: loaded and ran in a fresh python -I process with only the runtime "
        f"(weights: {quantization if quantization != 'none' else 'float32'}; inputs: {shapes})"
    ]
    if model is None:
        return [*lines, "no --model given: answers not compared"]
    if tolerance is None:
        tolerance = TOLERANCES[None if quantization == "none" else quantization]
    expected = keras_answers(model, report["inputs"])
    return lines + compare_answers(report["outputs"], expected, tolerance)
