"""Writing SavedModels in the layout TensorFlow Serving watches.

`saved_models/<name>/<version>/` holds one SavedModel per integer version;
TensorFlow Serving serves the highest version and ignores any directory whose
name is not an integer, such as the temporary directory an export is written
into before it is renamed to its version.

Temporary directories are named `.export-<pid>@<host>-<random>` (and
`.replaced-<version>-<pid>@<host>-<random>` for a version being overwritten).
A process killed while exporting leaves its temporary directory behind; the
next export into the same folder removes those of processes of the same host
that no longer run (and puts back a replaced version that a kill left out of
place). It leaves alone the temporary directories of running exports and of
other hosts.
"""

import contextlib
import ctypes
import errno
import json
import os
import pathlib
import re
import shutil
import socket
import tempfile

import keras
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from keras_seqcells._checks import check_optional_positive_int
from keras_seqcells.layers import portable_graphs
from keras_seqcells.serving import signatures as sigs
from keras_seqcells.serving.adapters import adapter_for

#: Operations that call back into Python: a graph holding them cannot be served.
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
#: Where an export keeps its example requests (TF Serving ignores `assets.extra`
#: but for its warm-up file).
EXAMPLES_FILE = pathlib.Path("assets.extra") / "keras_seqcells_examples.json"


def check_name(base):
    """Returns the export folder `base`, given by the caller, as a Path.

    Any absolute or relative folder is accepted (TensorFlow Serving's own
    convention is an absolute base path such as `/models/<name>`), `..` too:
    the caller chose it. The folder's last part must name the model, so it
    may not be empty, `.`, `..` or a version number, and the folder may not
    be an existing file. A model name that comes from outside (a request, a
    configuration) goes through `model_folder`, which also refuses names that
    could leave the root folder.
    """
    text = os.fspath(base) if isinstance(base, (str, os.PathLike)) else None
    if not text or not text.strip():
        raise ValueError(
            f"Expected `path` to be a folder such as 'saved_models/<name>'. Received: path={base!r}"
        )
    path = pathlib.Path(text)
    if path.name in ("", ".", "..") or path.name.isdigit():
        raise ValueError(
            "Expected `path` to be a model folder such as 'saved_models/<name>' or "
            "'/models/<name>', whose last part is a name (not a version number, '.' or '..'). "
            f"Received: path={text!r}"
        )
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"Expected `path` to be a folder (or not to exist yet). Received: path={text!r} "
            "(an existing file)"
        )
    return path


#: A model name as TensorFlow Serving's URLs and `models.config` take it, one folder deep.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def model_folder(root, name):
    """The export folder `root/name` of a model whose name comes from outside.

    `root` is trusted (the caller's folder, absolute or relative); `name` is
    not: it must be one folder name of letters, digits, `_`, `.` and `-`,
    starting with a letter or digit and not a number, so that it can neither
    leave `root` (no `/`, no `..`) nor be taken for a version.

    Args:
        root: The folder holding the models, e.g. `"saved_models"`.
        name: The model's name, e.g. `"tagger"`.

    Returns:
        The folder as a `pathlib.Path` (see `check_name`).

    Example:

    >>> model_folder("saved_models", "tagger")
    PosixPath('saved_models/tagger')
    """
    if (
        not isinstance(name, str)
        or not _MODEL_NAME.fullmatch(name)
        or ".." in name
        or name.isdigit()
    ):
        raise ValueError(
            "Expected `name` to be a model name of letters, digits, '_', '.' and '-' "
            "(one folder, not a number), such as 'tagger'. "
            f"Received: name={name!r}"
        )
    root_text = os.fspath(root) if isinstance(root, (str, os.PathLike)) else None
    if not root_text or not root_text.strip():
        raise ValueError(
            f"Expected `root` to be a folder such as 'saved_models'. Received: root={root!r}"
        )
    return check_name(pathlib.Path(root_text) / name)


def versions(base):
    """The integer versions under an export folder, ascending."""
    base = pathlib.Path(base)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def newest_version(base):
    """`(version, path)` of the highest version under `base`; ValueError if none."""
    found = versions(base)
    if not found:
        raise ValueError(
            "Expected an export folder holding numbered versions (saved_models/<name>/<N>/). "
            f"Received: path={os.fspath(base)!r} (no version)"
        )
    return found[-1], pathlib.Path(base) / str(found[-1])


def graph_ops(saved_model_dir):
    """The set of operation types of a SavedModel's graph and its functions."""
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((pathlib.Path(saved_model_dir) / "saved_model.pb").read_bytes())
    ops = set()
    functions = set()
    for meta_graph in proto.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            functions.add(function.signature.name)
            ops.update(node.op for node in function.node_def)
    return ops - functions


def check_graph(saved_model_dir):
    """Raises ValueError if the graph calls Python or holds an op without a CPU kernel."""
    from tensorflow.python.framework import kernels

    ops = graph_ops(saved_model_dir)
    python_ops = sorted(ops & PYTHON_OPS)
    if python_ops:
        raise ValueError(
            "Expected a graph without Python calls, which no server can run. Received: "
            f"ops {python_ops}"
        )

    def gpu_only(op):
        devices = {
            kernel.device_type for kernel in kernels.get_registered_kernels_for_op(op).kernel
        }
        return op.startswith("Cudnn") or (bool(devices) and not devices & {"CPU", "DEFAULT"})

    without_cpu = sorted(op for op in ops if gpu_only(op))
    if without_cpu:
        raise ValueError(
            "Expected a graph of operations that run on CPU. Received: ops without a CPU "
            f"kernel {without_cpu}"
        )
    return ops


def _owner():
    host = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:64] or "host"
    return f"{os.getpid()}@{host}"


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


_TEMPORARY = re.compile(r"^\.(export|replaced-(\d+))-(\d+)@([^-]+)-[A-Za-z0-9_]+$")


def _stale(base):
    """The temporary directories under `base` left by dead exports of this host."""
    host = _owner().split("@", 1)[1]
    found = []
    for child in sorted(pathlib.Path(base).iterdir()):
        match = _TEMPORARY.match(child.name)
        if not match or not child.is_dir() or child.is_symlink():
            continue
        _, version, pid, owner_host = match.groups()
        if owner_host == host and int(pid) != os.getpid() and not _running(int(pid)):
            found.append((child, version))
    return found


def clean_stale(base):
    """Removes what exports killed on this host left under `base`; returns the names.

    A `.replaced-<version>-*` directory whose version is missing (an overwrite
    killed between its two renames) is renamed back to its version first.
    """
    removed = []
    for child, version in _stale(base):
        if version is not None:
            previous = child / "version"
            target = pathlib.Path(base) / version
            if previous.is_dir() and not target.exists():
                with contextlib.suppress(OSError):  # another export put it back first
                    os.rename(previous, target)
        shutil.rmtree(child, ignore_errors=True)
        if not child.exists():
            removed.append(child.name)
    return removed


def _fsync(path):
    with contextlib.suppress(OSError):  # folders cannot be opened on every system
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _fsync_tree(root):
    """Flushes a written SavedModel to disk, so that a rename never publishes lost data."""
    for folder, _, files in os.walk(root):
        for name in files:
            _fsync(os.path.join(folder, name))
        _fsync(folder)


def _exchange(first, second):
    """Swaps two directories in one step (Linux `renameat2`); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    path_type = ctypes.c_char_p
    renameat2.argtypes = [ctypes.c_int, path_type, ctypes.c_int, path_type, ctypes.c_uint]
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), os.fspath(first))


def _store_variables_once(archive):
    """Lists the tf.Variables behind the model's Keras variables in the archive.

    `ExportArchive.track` lists the Keras variables, while the SavedModel
    also keeps the tf.Variables its functions capture (`_all_variables`):
    two objects per weight, so every weight was written twice. With the same
    tf.Variable in both lists each weight is written once.
    """
    trackable = archive._tf_trackable
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        listed = []
        for variable in getattr(trackable, name):
            value = variable.value if isinstance(variable, keras.Variable) else None
            listed.append(value if isinstance(value, tf.Variable) else variable)
        setattr(trackable, name, listed)


def _build_archive(model, signatures):
    archive = keras.export.ExportArchive()
    archive.track(model)
    for trackable in signatures.trackables:
        archive.track(trackable)
    _store_variables_once(archive)
    for name, function in sigs.trace_signatures(signatures).items():
        archive.add_endpoint(name, function)
    return archive


def _readable_by_all(folder):
    """Gives a folder made by `mkdtemp` (0700) the mode `mkdir` would give it.

    The temporary folder becomes the version folder, which a server running
    as another user (TensorFlow Serving's container, say) must be able to read.
    """
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)


def export(model, path, version=None, task=None, overwrite=False, xla=True, top=5):
    """Exports a model as a versioned SavedModel for TensorFlow Serving.

    The SavedModel is written into a temporary directory beside the versions
    and renamed to `path/<version>` once complete, so a failed export leaves
    the earlier versions as they were and nothing half-written behind. An
    export killed outright leaves its temporary directory (never an integer
    name, so no server loads it); the next export removes it (see the module
    docstring). An existing version is replaced in one step where the system
    can swap two directories (Linux), else by two renames.

    Signatures (see `keras_seqcells.serving.signatures`):

    - `serving_default`: raw inputs to named outputs: `text` to
      `probabilities` and `label` (text classification); `sentence` to
      `tokens`, `tags`, `probabilities` and `lengths` (tagging); `prompt` to
      `probabilities`, `top_words` and `top_probabilities` (next word);
      `window` (float32, `(batch, window)`, or `(batch, window, columns)`
      for a forecaster with features or several targets) to `forecast`
      (forecasting); the model's own input and output names for any other
      model (each task's export adapter says which; see
      `keras_seqcells.serving.adapters`).
    - `serving_xla`: the same with its numeric part compiled by XLA (needs
      `--xla_cpu_compilation_enabled=true` in TensorFlow Serving on CPU).
    - `step` and `initial_state`, where the model runs one step at a time:
      one time step with the recurrent states (`state_h`, `state_c`) as
      inputs and outputs; `initial_state(batch_size)` gives the zero states a
      new stream starts from.

    Args:
        model: A task model or any Keras model.
        path: The model's folder, absolute or relative, e.g.
            `"saved_models/tagger"` or `"/models/tagger"` (TensorFlow
            Serving's `--model_base_path`); the version goes below it. Use
            `model_folder(root, name)` for a model name that comes from
            outside.
        version: The version number; by default one above the highest one.
        task: The name of the export adapter whose signatures to export
            (`"text-classification"`, `"forecasting"`, `"tagging"`,
            `"next-word"`, `"generic"` or one registered with
            `register_adapter`); by default the task the model was built by
            (see `keras_seqcells.serving.adapters.adapter_for`).
        overwrite: Whether an existing `version` may be replaced.
        xla: Whether to add the `serving_xla` signature.
        top: Number of `top_words` of a next-word model.

    Returns:
        The path of the written version (a `pathlib.Path`).

    Example:

    ```python
    import keras_seqcells

    keras_seqcells.export(model, "saved_models/forecaster")  # saved_models/forecaster/1
    ```
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected `model` to be a keras.Model. Received: model={model!r}")
    base = check_name(path)
    version = check_optional_positive_int("version", version)
    adapter = adapter_for(model, task)
    if base.is_dir():
        clean_stale(base)
    if version is None:
        existing = versions(base)
        version = (existing[-1] + 1) if existing else 1
    target = base / str(version)
    if target.exists() and not overwrite:
        raise ValueError(
            f"Expected a new version under {os.fspath(base)!r}. Received: version={version} "
            "(exists; pass overwrite=True to replace it)"
        )
    signatures = sigs.build_signatures(model, adapter, xla=xla, top=top)
    base.mkdir(parents=True, exist_ok=True)
    # Not an integer name, so that TF Serving never picks it up.
    temporary = pathlib.Path(tempfile.mkdtemp(prefix=f".export-{_owner()}-", dir=base))
    _readable_by_all(temporary)
    old = None
    try:
        archive = _build_archive(model, signatures)
        # Saving traces the model's own functions too (to find its resources).
        with portable_graphs():
            archive.write_out(os.fspath(temporary), verbose=False)
        check_graph(temporary)
        examples = temporary / EXAMPLES_FILE
        examples.parent.mkdir(parents=True, exist_ok=True)
        examples.write_text(
            json.dumps(
                {
                    "task": adapter.name,
                    "signatures": signatures.examples,
                    "step": signatures.step_example,
                    "notes": signatures.notes,
                },
                indent=1,
            )
        )
        _fsync_tree(temporary)
        # `target` is swapped with the new version in one step where the system can;
        # `temporary` then holds the old version and is removed below.
        if not (target.exists() and _exchange(temporary, target)):
            if target.exists():
                old = pathlib.Path(
                    tempfile.mkdtemp(prefix=f".replaced-{version}-{_owner()}-", dir=base)
                )
                os.rename(target, old / "version")
            os.rename(temporary, target)
        _fsync(base)
    except BaseException:
        if old is not None and not target.exists():
            os.rename(old / "version", target)
        raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target


def read_examples(version_dir):
    """The example requests an export stored beside its SavedModel."""
    path = pathlib.Path(version_dir) / EXAMPLES_FILE
    if not path.is_file():
        return {"task": None, "signatures": {}, "step": None, "notes": []}
    try:
        examples = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"Expected the example requests as JSON. Received: path={os.fspath(path)!r} "
            f"(corrupt: {error})"
        ) from None
    if not isinstance(examples, dict) or not isinstance(examples.get("signatures"), dict):
        raise ValueError(
            "Expected the example requests as an object with `signatures`. "
            f"Received: path={os.fspath(path)!r}"
        )
    return examples


__all__ = [
    "check_graph",
    "check_name",
    "clean_stale",
    "export",
    "model_folder",
    "newest_version",
    "read_examples",
    "versions",
]
