"""Checks that an export loads outside Keras and answers its example requests correctly.

What `serve_check` runs, exactly (TensorFlow Serving itself is not run: its
C++ `LoadSavedModel` and its REST and gRPC servers are not part of
TensorFlow's Python package):

- it loads the newest version with `tf.compat.v1.saved_model.loader.load`
  (Python over TensorFlow's C++ session, in a graph of its own) and runs
  the example requests stored with the export through every signature;
- it checks the REST request bodies (`{"instances": ...}`, row format, and
  `{"inputs": ...}`, columnar format) against the signature as TensorFlow
  Serving reads them, and that their answers are those of the direct
  requests;
- it builds a gRPC `PredictRequest` with `tensorflow-serving-api`
  (`predict_pb2`, tensors from `tf.make_tensor_proto`) and reads it back: a
  protobuf round trip, without a server or a network call;
- it compares `serving_xla` with `serving_default`, and the `step` signature
  fed a sequence one step at a time with `serving_default`;
- with `model`, it compares every answer with the Keras model's own (the
  task's Python `predict`);
- with `fresh_process` (the default), it runs TensorFlow's own
  `saved_model_cli run` on the `serving_default` example inputs, and loads
  the export with `tf.saved_model.load` in a fresh `python -I` process
  where `keras_seqcells` cannot be imported; both must give the answers of
  the first load.
"""

import ast
import json
import os
import re
import tempfile

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.util import deprecation

from keras_seqcells import _isolated
from keras_seqcells.serving.adapters import adapter_named
from keras_seqcells.serving.comparison import (
    TOLERANCES,
    ServeCheckError,
    compare,
    compare_outputs,
    decoded,
    precision,
)
from keras_seqcells.serving.saved_model import newest_version, read_examples


def check_files(version_dir):
    """Raises ServeCheckError, naming the path, if a SavedModel's files are missing or corrupt.

    Checks what a server reads first: the folder, `saved_model.pb` (present
    and parseable) and the variables checkpoint (`variables/variables.index`
    and its data shards). Returns the parsed `SavedModel` proto.
    """
    folder = os.fspath(version_dir)
    if not os.path.isdir(folder):
        raise ServeCheckError(
            f"Expected a SavedModel folder. Received: path={folder!r} (not a folder)"
        )
    graph_file = os.path.join(folder, "saved_model.pb")
    if not os.path.isfile(graph_file):
        raise ServeCheckError(
            f"Expected a SavedModel with a saved_model.pb file. Received: path={folder!r} "
            "(saved_model.pb is missing)"
        )
    proto = saved_model_pb2.SavedModel()
    try:
        with open(graph_file, "rb") as file:
            proto.ParseFromString(file.read())
    except DecodeError as error:
        raise ServeCheckError(
            f"Expected a readable saved_model.pb. Received: path={graph_file!r} "
            f"(corrupt: {_first_line(error)})"
        ) from None
    if not proto.meta_graphs:
        raise ServeCheckError(
            f"Expected a saved_model.pb holding a graph. Received: path={graph_file!r} "
            "(no graph in it; empty or truncated)"
        )
    variables = os.path.join(folder, "variables")
    if not os.path.isdir(variables):
        raise ServeCheckError(
            f"Expected a SavedModel with a variables folder. Received: path={folder!r} "
            "(variables/ is missing)"
        )
    index = os.path.join(variables, "variables.index")
    if not os.path.isfile(index):
        raise ServeCheckError(
            f"Expected the variables checkpoint variables/variables.index. "
            f"Received: path={folder!r} (variables.index is missing)"
        )
    shards = [name for name in os.listdir(variables) if name.startswith("variables.data-")]
    if not shards:
        raise ServeCheckError(
            f"Expected the variables data files variables/variables.data-*. "
            f"Received: path={folder!r} (no data file)"
        )
    return proto


def _first_line(error):
    """The line of an error's message that says what is wrong (TF's come with context)."""
    text = str(getattr(error, "message", None) or error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    telling = [
        line
        for line in lines
        if not line.endswith(":") and not line.startswith(("Detected at node", "[[", "File "))
    ]
    return (telling or lines or [type(error).__name__])[0]


class CppLoaded:
    """A SavedModel loaded by `tf.compat.v1.saved_model.loader` into a session of its own graph.

    The loader is Python over TensorFlow's C++ session; TensorFlow Serving's
    C++ `LoadSavedModel` is a different entry point (not run here).

    A folder with missing or corrupt files raises ServeCheckError naming the
    path and what is wrong (see `check_files`), not TensorFlow's own error.
    """

    def __init__(self, version_dir):
        check_files(version_dir)
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        try:
            with self.graph.as_default(), deprecation.silence():
                self.meta_graph = tf.compat.v1.saved_model.loader.load(
                    self.session, [tf.saved_model.SERVING], os.fspath(version_dir)
                )
        except (tf.errors.OpError, OSError, ValueError, RuntimeError) as error:
            self.session.close()
            raise ServeCheckError(
                f"Expected a SavedModel that tf.compat.v1.saved_model.loader can load. Received: "
                f"path={os.fspath(version_dir)!r} ({type(error).__name__}: {_first_line(error)})"
            ) from error
        self.signatures = dict(self.meta_graph.signature_def)

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def signature(self, name):
        if name not in self.signatures:
            raise ServeCheckError(
                f"Expected a signature {name!r}. Received: signatures {sorted(self.signatures)}"
            )
        return self.signatures[name]

    def run(self, name, feed):
        """Runs signature `name` on `{input name: array}`; returns `{output name: array}`."""
        signature = self.signature(name)
        feed = check_request(signature, feed)
        fetches = {key: info.name for key, info in signature.outputs.items()}
        return self.session.run(
            fetches, {signature.inputs[key].name: value for key, value in feed.items()}
        )


def _numpy_dtype(info):
    return tf.dtypes.as_dtype(info.dtype).as_numpy_dtype


def check_request(signature, feed):
    """`feed` as arrays of the signature's dtypes; ServeCheckError if it does not fit."""
    expected, received = sorted(signature.inputs), sorted(feed)
    if expected != received:
        raise ServeCheckError(
            f"Expected the inputs {expected} of the signature. Received: inputs {received}"
        )
    arrays = {}
    for key, value in feed.items():
        info = signature.inputs[key]
        dtype = tf.dtypes.as_dtype(info.dtype)
        array = np.asarray(value)
        if dtype == tf.string:
            if array.dtype.kind not in "USO":
                raise ServeCheckError(
                    f"Expected strings in input {key!r}. Received: dtype {array.dtype}"
                )
            array = array.astype(object)
        else:
            if array.dtype.kind not in "biuf":
                raise ServeCheckError(
                    f"Expected numbers ({dtype.name}) in input {key!r}. "
                    f"Received: dtype {array.dtype}"
                )
            array = array.astype(_numpy_dtype(info))
        if not info.tensor_shape.unknown_rank:
            dims = [dim.size for dim in info.tensor_shape.dim]
            if len(dims) != array.ndim or any(
                size not in (-1, got) for size, got in zip(dims, array.shape, strict=True)
            ):
                raise ServeCheckError(
                    f"Expected input {key!r} of shape {dims} (-1: any size). Received: "
                    f"shape {list(array.shape)}"
                )
        arrays[key] = array
    return arrays


# --------------------------------------------------------------------- REST
def rest_bodies(feed):
    """The REST bodies of a request: row (`instances`) and columnar (`inputs`) format."""
    names = sorted(feed)
    size = len(feed[names[0]])
    if len(names) == 1:
        instances = list(feed[names[0]])
    else:
        instances = [{name: feed[name][i] for name in names} for i in range(size)]
    return {"instances": instances}, {"inputs": {name: feed[name] for name in names}}


def parse_rest(body, signature):
    """The tensors TensorFlow Serving reads from a REST body (after checking them)."""
    body = json.loads(json.dumps(body))
    names = sorted(signature.inputs)
    if set(body) == {"instances"}:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise ServeCheckError(
                f"Expected `instances` to be a non-empty list. Received: {instances!r}"
            )
        if all(isinstance(row, dict) for row in instances):
            feed = {name: [row.get(name) for row in instances] for name in names}
            for row in instances:
                if sorted(row) != names:
                    raise ServeCheckError(
                        f"Expected each instance to hold the inputs {names}. "
                        f"Received: {sorted(row)}"
                    )
        elif len(names) == 1:
            feed = {names[0]: instances}
        else:
            raise ServeCheckError(
                f"Expected instances as objects with the inputs {names}. "
                f"Received: {instances[:1]!r}"
            )
    elif set(body) == {"inputs"}:
        inputs = body["inputs"]
        feed = inputs if isinstance(inputs, dict) else {names[0]: inputs}
    else:
        raise ServeCheckError(
            f'Expected a body with "instances" or "inputs". Received: keys {sorted(body)}'
        )
    return check_request(signature, feed)


# --------------------------------------------------------------------- gRPC
def _predict_pb2():
    try:
        from tensorflow_serving.apis import predict_pb2
    except ImportError as error:
        raise ImportError(
            "Expected the `tensorflow-serving-api` package for the gRPC check. Install it with "
            "`pip install tensorflow-serving-api` (or `pip install keras-seqcells[serving]`). "
            f"Received: {error}"
        ) from error
    return predict_pb2


def predict_request(model_name, signature_name, feed, signature):
    """A gRPC `PredictRequest` for `feed`, its tensors typed by the signature (no server)."""
    predict_pb2 = _predict_pb2()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for key, value in check_request(signature, feed).items():
        dtype = tf.dtypes.as_dtype(signature.inputs[key].dtype)
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
    return request


def parse_request(request, signature):
    """The tensors a server reads from a `PredictRequest` (after checking them)."""
    feed = {}
    for key, proto in request.inputs.items():
        if key not in signature.inputs:
            raise ServeCheckError(f"Expected inputs {sorted(signature.inputs)}. Received: {key!r}")
        if proto.dtype != signature.inputs[key].dtype:
            expected = tf.dtypes.as_dtype(signature.inputs[key].dtype).name
            raise ServeCheckError(
                f"Expected input {key!r} of dtype {expected}. "
                f"Received: {tf.dtypes.as_dtype(proto.dtype).name}"
            )
        feed[key] = tf.make_ndarray(proto)
    return check_request(signature, feed)


# -------------------------------------------------------------- comparisons
def keras_answers(model, task, feed, top=5):
    """What the Keras model (the task's Python code) answers to a request.

    Args:
        model: The Keras model.
        task: The name of the export's adapter (recorded with the export).
        feed: A `serving_default` request, `{input name: list}`.
        top: Number of best candidates, where the task ranks some.

    Returns:
        `{output name: array}`, as `compare_with_keras` takes it.
    """
    return adapter_named(task).keras_answers(model, feed, top=top)


def compare_with_keras(task, got, expected):
    """Compares a `serving_default` answer with `keras_answers`; ServeCheckError if they differ."""
    adapter_named(task).compare_with_keras(got, expected)


# ------------------------------------------------------- other processes
#: Run first in those processes: any import of keras_seqcells fails there.
WITHOUT_PACKAGE = "import sys; sys.modules['keras_seqcells'] = None\n"

_SAVED_MODEL_CLI = WITHOUT_PACKAGE + (
    "import numpy as np\n"
    "np.set_printoptions(threshold=sys.maxsize, floatmode='unique')\n"
    "from tensorflow.python.tools.saved_model_cli import main\n"
    "sys.argv = ['saved_model_cli'] + sys.argv[1:]\n"
    "main()\n"
)

_FRESH_LOAD = WITHOUT_PACKAGE + (
    "import json\n"
    "import numpy as np\n"
    "import tensorflow as tf\n"
    "folder, names = sys.argv[1], sys.argv[2:]\n"
    "signature = tf.saved_model.load(folder).signatures['serving_default']\n"
    "specs = signature.structured_input_signature[1]\n"
    "feed = {n: tf.constant(np.load(n + '.npy', allow_pickle=False), specs[n].dtype) "
    "for n in names}\n"
    "outputs = signature(**feed)\n"
    "def plain(value):\n"
    "    value = value.numpy()\n"
    "    if value.dtype == object:\n"
    "        return np.vectorize(lambda b: b.decode(), otypes=[object])(value).tolist()\n"
    "    return value.tolist()\n"
    "assert sys.modules['keras_seqcells'] is None\n"
    "print(json.dumps({name: plain(value) for name, value in outputs.items()}))\n"
)


def run_isolated(script, arguments, folder, what):
    """Runs `script` with `python -I` in `folder`; returns its stdout."""
    return _isolated.run_isolated(script, arguments, folder, what, ServeCheckError)


def _save_inputs(feed, folder):
    """Writes each input as `<name>.npy` (strings as unicode arrays: no pickles)."""
    for name, value in feed.items():
        array = np.asarray(value)
        if array.dtype.kind in "OS":
            array = decoded(array).astype(str)
        np.save(os.path.join(folder, f"{name}.npy"), array, allow_pickle=False)


_BYTES = re.compile(r"""b'(?:[^'\\]|\\.)*'|b"(?:[^"\\]|\\.)*\"""")
_NUMBER = re.compile(r"[-+]?(?:inf|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


def parse_saved_model_cli(stdout, expected):
    """`{output: array}` from what `saved_model_cli run` prints, shaped like `expected`."""
    sections = dict(
        re.findall(
            r"Result for output key (\S+):\n(.*?)(?=\nResult for output key |\Z)", stdout, re.DOTALL
        )
    )
    parsed = {}
    for name, want in expected.items():
        want = np.asarray(want)
        if name not in sections:
            raise ServeCheckError(
                f"Expected saved_model_cli to print output {name!r}. Received: outputs "
                f"{sorted(sections)}"
            )
        text = sections[name]
        if want.dtype.kind in "OSU":
            values = [ast.literal_eval(token).decode() for token in _BYTES.findall(text)]
            values = np.array(values, dtype=object)
        elif want.dtype.kind == "b":
            values = np.array([token == "True" for token in re.findall(r"True|False", text)])
        else:
            values = np.array([float(token) for token in _NUMBER.findall(text)]).astype(want.dtype)
        if values.size != want.size:
            raise ServeCheckError(
                f"Expected saved_model_cli's output {name!r} of {want.size} values. "
                f"Received: {values.size}"
            )
        parsed[name] = values.reshape(want.shape)
    return parsed


def check_saved_model_cli(version_dir, feed, expected):
    """Runs `saved_model_cli run` on `serving_default` with `feed`; compares with `expected`.

    TensorFlow's own command runs in a `python -I` process of its own (where
    keras_seqcells cannot be imported), with the inputs as `.npy` files and
    NumPy printing every value in full.
    """
    with tempfile.TemporaryDirectory() as folder:
        _save_inputs(feed, folder)
        inputs = ";".join(f"{name}={name}.npy" for name in sorted(feed))
        arguments = ["run", "--dir", os.path.abspath(version_dir), "--tag_set", "serve"]
        arguments += ["--signature_def", "serving_default", "--inputs", inputs]
        stdout = run_isolated(_SAVED_MODEL_CLI, arguments, folder, "saved_model_cli run")
    compare_outputs("saved_model_cli", parse_saved_model_cli(stdout, expected), expected)


def check_fresh_load(version_dir, feed, expected):
    """Loads with `tf.saved_model.load` in a fresh `python -I` process; compares answers.

    The process starts in an empty folder and cannot import keras_seqcells,
    so the export must run on TensorFlow alone.
    """
    with tempfile.TemporaryDirectory() as folder:
        _save_inputs(feed, folder)
        stdout = run_isolated(
            _FRESH_LOAD,
            [os.path.abspath(version_dir), *sorted(feed)],
            folder,
            "tf.saved_model.load in a fresh process",
        )
    lines = stdout.strip().splitlines()
    got = json.loads(lines[-1]) if lines else {}
    compare_outputs("fresh tf.saved_model.load", got, expected)


# -------------------------------------------------------------------- check
def check_step(loaded, step_example):
    """Feeds `step` a sequence from the zero state; compares with `serving_default`."""
    state = loaded.run("initial_state", {"batch_size": np.int32(1)})
    step_inputs = set(loaded.signature("step").inputs)
    steps = []
    for feed in step_example["inputs"]:
        if set(feed) | set(state) != step_inputs:
            raise ServeCheckError(
                f"Expected the step inputs {sorted(step_inputs)}. Received: "
                f"{sorted(set(feed) | set(state))}"
            )
        outputs = loaded.run("step", {**feed, **state})
        state = {name: outputs[name] for name in state}
        steps.append(outputs)
    whole = loaded.run("serving_default", step_example["serving_default"])
    names = step_example["outputs"] or [name for name in whole if name in steps[-1]]
    for name in names:
        if whole[name].ndim == steps[-1][name].ndim + 1:  # an output at every step
            got = np.stack([outputs[name] for outputs in steps], axis=1)
        else:
            got = steps[-1][name]
        compare(f"step-by-step output {name!r}", got, whole[name])


def computes_in_half_precision(meta_graph):
    """Whether a loaded SavedModel's graph (or a function of it) has bfloat16 or float16
    tensors: the export of a model trained under a mixed precision policy."""
    half = {types_pb2.DT_BFLOAT16, types_pb2.DT_HALF}
    graph = meta_graph.graph_def
    nodes = [*graph.node, *(node for f in graph.library.function for node in f.node_def)]
    return any(
        value.type in half or any(item in half for item in value.list.type)
        for node in nodes
        for value in node.attr.values()
    )


def serve_check(path, model=None, version=None, model_name=None, grpc=True, fresh_process=True):
    """Runs the checks of the module docstring on an export.

    Args:
        path: The export folder (`saved_models/<name>`) or one version folder.
        model: Optional Keras model whose answers the export must give.
        version: The version to check (the newest by default).
        model_name: The model name of the gRPC request (the folder's name).
        grpc: Whether to check a gRPC `PredictRequest` round trip (needs
            `tensorflow-serving-api`; no server is started).
        fresh_process: Whether to also run `saved_model_cli run` and
            `tf.saved_model.load` in fresh `python -I` processes that
            cannot import keras_seqcells (some seconds each).

    Returns:
        A list of lines saying what was checked.

    Raises:
        ServeCheckError: naming the first check that fails.

    Example:

    ```python
    import keras_seqcells

    print("\n".join(keras_seqcells.serve_check("saved_models/tagger")))
    ```
    """
    path = os.fspath(path)
    base = os.path.basename(os.path.normpath(path))
    if base.isdigit() and version is None:
        version_dir = path
        model_name = model_name or os.path.basename(os.path.dirname(os.path.normpath(path)))
    elif version is not None:
        version_dir = os.path.join(path, str(version))
        if not os.path.isdir(version_dir):
            raise ValueError(
                f"Expected an existing version. Received: version={version} under {path!r}"
            )
    else:
        version, version_dir = newest_version(path)
    model_name = model_name or base
    check_files(version_dir)
    examples = read_examples(version_dir)
    task = examples["task"]
    report = [
        f"{version_dir}: loaded with tf.compat.v1.saved_model.loader (Python over TensorFlow's "
        f"C++ session; not TF Serving's LoadSavedModel) (task: {task})"
    ]
    with CppLoaded(version_dir) as loaded:
        rounding = "half precision" if computes_in_half_precision(loaded.meta_graph) else "float32"
        if rounding != "float32":
            report.append(
                "half-precision graph (a model trained under a mixed precision policy): "
                f"answers compared within its rounding (rtol, atol {TOLERANCES[rounding]})"
            )
        with precision(rounding):
            report.append(f"signatures: {', '.join(sorted(loaded.signatures))}")
            answers = {}
            for name, feed in examples["signatures"].items():
                answers[name] = loaded.run(name, feed)
                report.append(
                    f"{name}: example request answered ({', '.join(sorted(answers[name]))})"
                )
            default = examples["signatures"].get("serving_default")
            if default is not None:
                signature = loaded.signature("serving_default")
                for body in rest_bodies(default):
                    kind = next(iter(body))
                    got = loaded.run("serving_default", parse_rest(body, signature))
                    compare_outputs(f"REST {kind!r}", got, answers["serving_default"])
                    report.append(
                        f"REST body {{{kind!r}: ...}}: parsed as TF Serving reads it (no server), "
                        "fits the signature, same answers"
                    )
                if grpc:
                    request = predict_request(model_name, "serving_default", default, signature)
                    request = type(request).FromString(request.SerializeToString())
                    got = loaded.run("serving_default", parse_request(request, signature))
                    compare_outputs("gRPC", got, answers["serving_default"])
                    report.append(
                        "gRPC PredictRequest: protobuf round trip (no server), fits the signature, "
                        "same answers"
                    )
                if "serving_xla" in answers:
                    compare_outputs(
                        "serving_xla", answers["serving_xla"], answers["serving_default"]
                    )
                    report.append("serving_xla: same answers as serving_default")
                if examples.get("step") and "step" in loaded.signatures:
                    check_step(loaded, examples["step"])
                    report.append(
                        "step: a sequence fed step by step gives the serving_default answer"
                    )
                if model is not None:
                    expected = keras_answers(model, task, default)
                    compare_with_keras(task, answers["serving_default"], expected)
                    report.append("serving_default: the Keras model's answers")
    with precision(rounding):
        if default is not None and fresh_process:
            check_saved_model_cli(version_dir, default, answers["serving_default"])
            report.append("saved_model_cli run (python -I, no keras_seqcells): same answers")
            check_fresh_load(version_dir, default, answers["serving_default"])
            report.append(
                "tf.saved_model.load in a fresh python -I process without keras_seqcells: "
                "same answers"
            )
    return report
