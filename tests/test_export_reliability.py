"""Export reliability: killed exports, damaged SavedModels, unsafe paths, concurrency, graphs."""

import concurrent.futures
import contextlib
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seqcells import cli
from keras_seqcells.serving import check_graph, export, serve_check, versions
from keras_seqcells.serving import saved_model as saved_model_module
from keras_seqcells.serving.serve_check import CppLoaded, ServeCheckError, check_files
from tests.test_export import dense_model, sequence_model, task_model

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE_EXPORTS = ROOT / "saved_models"
PYTHON_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Runs the test in `tmp_path` (exports take relative folders)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@contextlib.contextmanager
def _working_directory(folder):
    """Module-scoped fixtures export to relative folders (`monkeypatch` is per test)."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(cwd)


def _answers(version_dir, feed):
    with CppLoaded(version_dir) as loaded:
        return loaded.run("serving_default", feed)


def _assert_nothing_servable_is_partial(base):
    """Every integer-named folder (what TF Serving loads) is a whole SavedModel."""
    for child in pathlib.Path(base).iterdir():
        if child.name.isdigit():
            check_files(child)
            CppLoaded(child).close()
        else:
            assert child.name.startswith("."), child.name


# ------------------------------------------------------------- killed export
#: Exports a model into `saved_models/m` with the step named by argv[1] made to
#: stop half-way: it writes `ready` and sleeps there until the test kills it.
KILLED_EXPORT = textwrap.dedent(
    """
    import os, pathlib, sys, time
    import keras
    from keras_seqcells.serving import export
    from keras_seqcells.serving import saved_model as saved_model_module

    def stop_here():
        pathlib.Path("ready").write_text(str(os.getpid()))
        time.sleep(120)
        sys.exit("not killed")

    if sys.argv[1] == "write":  # inside tf.saved_model.save, the variables half written
        from tensorflow.python.saved_model import save as tf_save

        original = tf_save.save_and_return_nodes

        def half_written_save(obj, export_dir, *args, **kwargs):
            original(obj, export_dir, *args, **kwargs)
            data = next(pathlib.Path(export_dir, "variables").glob("variables.data-*"))
            data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
            stop_here()

        tf_save.save_and_return_nodes = half_written_save
        overwrite = False
    else:  # "rename": an overwrite without a one-step swap, killed between its renames
        saved_model_module._exchange = lambda first, second: False
        original_rename = os.rename

        def rename(source, target):
            original_rename(source, target)
            if pathlib.Path(source).name == "1":
                stop_here()

        os.rename = rename
        overwrite = True
    keras.utils.set_random_seed(7)
    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, name="y")(inputs))
    export(model, "saved_models/m", version=1 if overwrite else None, overwrite=overwrite,
           xla=False)
    sys.exit("export finished")
    """
)


@contextlib.contextmanager
def _python_child(script, argument, cwd, **streams):
    """`python -c script argument` in `cwd`, killed (if still running) and reaped on exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    child = subprocess.Popen(
        [sys.executable, "-c", script, argument], cwd=cwd, env=env, text=True, **streams
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def _sigkill(child):
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL


def _kill_an_export(stage, cwd):
    """Runs KILLED_EXPORT until it stops at `stage`, then sends it SIGKILL."""
    with _python_child(
        KILLED_EXPORT, stage, cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as child:
        deadline = time.monotonic() + 90
        while not (cwd / "ready").exists():
            if child.poll() is not None:
                pytest.fail(f"the export ended before its stop: {child.stderr.read()[-2000:]!r}")
            assert time.monotonic() < deadline, "the export never reached its stop"
            time.sleep(0.05)
        _sigkill(child)
    return child.pid


def test_an_export_killed_while_writing_leaves_the_previous_version_serving(in_tmp):
    model = dense_model()
    export(model, "saved_models/m", xla=False)
    feed = {"x": np.arange(6, dtype="float32").reshape(2, 3)}
    before = _answers("saved_models/m/1", feed)

    pid = _kill_an_export("write", in_tmp)

    partial, *rest = sorted(os.listdir("saved_models/m"))
    assert versions("saved_models/m") == [1] and rest == ["1"]
    assert re.fullmatch(rf"\.export-{pid}@[^-]+-\w+", partial)  # not an integer: never served
    _assert_nothing_servable_is_partial("saved_models/m")
    np.testing.assert_array_equal(_answers("saved_models/m/1", feed)["y"], before["y"])
    assert serve_check("saved_models/m", model=model, fresh_process=False)
    # The killed export's folder is partial: our loader says so instead of loading it.
    with pytest.raises(ServeCheckError, match=rf"path='saved_models/m/{re.escape(partial)}'"):
        CppLoaded(pathlib.Path("saved_models/m", partial))

    # The next export removes the dead export's folder and numbers on from the last version.
    assert export(model, "saved_models/m", xla=False) == pathlib.Path("saved_models/m/2")
    assert sorted(os.listdir("saved_models/m")) == ["1", "2"]
    _assert_nothing_servable_is_partial("saved_models/m")


def test_an_overwrite_killed_between_its_renames_is_put_back_by_the_next_export(in_tmp):
    # Where the system cannot swap two folders in one step, an overwrite renames the
    # old version aside, then the new one into place; a kill in between leaves the
    # old version aside, and the next export puts it back before anything else.
    model = dense_model()
    export(model, "saved_models/m", xla=False)
    feed = {"x": np.ones((1, 3), "float32")}
    before = _answers("saved_models/m/1", feed)

    _kill_an_export("rename", in_tmp)

    left = sorted(os.listdir("saved_models/m"))
    assert versions("saved_models/m") == []
    assert [name.split("-")[0] for name in left] == [".export", ".replaced"]
    _assert_nothing_servable_is_partial("saved_models/m")

    assert export(model, "saved_models/m", xla=False) == pathlib.Path("saved_models/m/2")
    assert sorted(os.listdir("saved_models/m")) == ["1", "2"]
    np.testing.assert_array_equal(_answers("saved_models/m/1", feed)["y"], before["y"])


def test_an_overwrite_swaps_the_version_in_one_step(in_tmp, monkeypatch):
    model = dense_model()
    export(model, "saved_models/m", xla=False)
    probe = pathlib.Path("probe_a"), pathlib.Path("probe_b")
    for folder in probe:
        folder.mkdir()
        (folder / folder.name).write_text("")
    if not saved_model_module._exchange(*probe):
        pytest.skip("this file system cannot swap two folders in one step")
    assert (probe[0] / "probe_b").exists() and (probe[1] / "probe_a").exists()

    renames = []
    original = os.rename
    monkeypatch.setattr(os, "rename", lambda a, b: renames.append((a, b)) or original(a, b))
    keras.utils.set_random_seed(3)
    other = dense_model()
    export(other, "saved_models/m", version=1, overwrite=True, xla=False)
    assert renames == []  # never a moment without version 1
    assert os.listdir("saved_models/m") == ["1"]
    feed = {"x": np.ones((1, 3), "float32")}
    np.testing.assert_allclose(
        _answers("saved_models/m/1", feed)["y"], other.predict(feed["x"], verbose=0), rtol=1e-6
    )


#: Exports a GRU model into `saved_models/m` over and over (as new versions, or
#: overwriting version 1 with argv[1] == "overwrite") until it is killed.
EXPORT_FOREVER = textwrap.dedent(
    """
    import sys
    from keras_seqcells.serving import export
    from tests.test_export import sequence_model

    model = sequence_model("gru")
    overwrite = sys.argv[1] == "overwrite"
    print("exporting", flush=True)
    while True:
        export(model, "saved_models/m", version=1 if overwrite else None, overwrite=overwrite)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["new versions", "overwrite"])
def test_exports_killed_at_random_moments_never_leave_a_partial_version(mode, in_tmp):
    # No hook: the kill lands wherever the export happens to be (tracing, writing,
    # checking, renaming, removing), 6 times over.
    export(sequence_model("gru"), "saved_models/m")
    rng = np.random.default_rng(0 if mode == "overwrite" else 1)
    caught_mid_export = 0
    for _ in range(6):
        with _python_child(
            EXPORT_FOREVER,
            mode.split()[0],
            in_tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as child:
            assert child.stdout.readline().strip() == "exporting"
            time.sleep(rng.uniform(0.2, 4.0))
            _sigkill(child)
        found = versions("saved_models/m")
        assert found and (mode == "new versions" or found == [1])
        _assert_nothing_servable_is_partial("saved_models/m")
        assert len(os.listdir("saved_models/m")) <= len(found) + 2
        caught_mid_export += len(os.listdir("saved_models/m")) > len(found)
        # The next export clears what the kill left.
        export(sequence_model("gru"), "saved_models/m", version=1, overwrite=True)
        assert sorted(os.listdir("saved_models/m")) == sorted(str(v) for v in found)
    print(f"{mode}: {caught_mid_export} of 6 kills left a temporary folder")
    assert caught_mid_export >= 1


def test_stale_folders_of_running_exports_and_other_hosts_are_left_alone(in_tmp):
    host = saved_model_module._owner().split("@", 1)[1]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        base = pathlib.Path("saved_models/m")
        kept = [
            f".export-{sleeper.pid}@{host}-running",  # a running export
            f".export-{os.getpid()}@{host}-ours",  # this process's own
            f".export-{dead.pid}@another.host-remote",  # another host's
            ".export-abc123",  # a name this package does not write
            "notes",  # anything else
        ]
        removed = [f".export-{dead.pid}@{host}-killed", f".replaced-4-{dead.pid}@{host}-killed"]
        for name in kept + removed:
            (base / name / "variables").mkdir(parents=True)
        (base / "notes.txt").write_text("")
        assert export(dense_model(), "saved_models/m", xla=False).name == "1"
        # Removed: the two of the dead process of this host (the folder set aside by its
        # overwrite held no `version` to put back).
        assert sorted(os.listdir(base)) == sorted([*kept, "notes.txt", "1"])
    finally:
        sleeper.kill()
        sleeper.wait()


# --------------------------------------------------------- damaged exports
def _break(name):
    def remove(path):
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    def truncate(path):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return {
        "no variables folder": (lambda d: remove(d / "variables"), "variables/ is missing"),
        "no variables.index": (
            lambda d: remove(d / "variables/variables.index"),
            "variables.index is missing",
        ),
        "no variables data": (
            lambda d: [remove(f) for f in (d / "variables").glob("variables.data-*")],
            "no data file",
        ),
        "truncated variables data": (
            lambda d: [truncate(f) for f in (d / "variables").glob("variables.data-*")],
            r"tf\.compat\.v1\.saved_model\.loader can load.*Read less bytes",
        ),
        "no saved_model.pb": (
            lambda d: remove(d / "saved_model.pb"),
            "saved_model.pb is missing",
        ),
        "corrupt saved_model.pb": (
            lambda d: (d / "saved_model.pb").write_bytes(b"\x00\xffnot a protobuf" * 3),
            "readable saved_model.pb.*corrupt",
        ),
        "empty saved_model.pb": (
            lambda d: (d / "saved_model.pb").write_bytes(b""),
            "no graph in it",
        ),
        "truncated saved_model.pb": (
            lambda d: truncate(d / "saved_model.pb"),
            "saved_model.pb",
        ),
    }[name]


DAMAGES = [
    "no variables folder",
    "no variables.index",
    "no variables data",
    "truncated variables data",
    "no saved_model.pb",
    "corrupt saved_model.pb",
    "empty saved_model.pb",
    "truncated saved_model.pb",
]


@pytest.fixture(scope="module")
def whole_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole")
    with _working_directory(folder):
        export(dense_model(), "saved_models/m", xla=False)
    return folder / "saved_models/m/1"


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_export_fails_with_its_path_and_what_is_wrong(
    damage, whole_export, in_tmp, capsys
):
    version = pathlib.Path("saved_models/m/1")
    shutil.copytree(whole_export, version)
    breaking, message = _break(damage)
    breaking(version)
    where = re.escape("saved_models/m/1")

    def assert_clear(error):
        text = str(error.value)
        assert text.startswith("Expected ") and len(text.splitlines()) == 1, text
        assert re.search(rf"path='{where}", text) and re.search(message, text), text

    with pytest.raises(ServeCheckError) as error:
        CppLoaded(version)
    assert_clear(error)
    for path in ("saved_models/m", "saved_models/m/1"):
        with pytest.raises(ServeCheckError) as error:
            serve_check(path)
        assert_clear(error)
        capsys.readouterr()
        assert cli.main(["serve-check", path]) == 1
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1, captured.err
        assert re.match(rf"keras-seqcells serve-check: FAILED: Expected .*{where}", lines[0])
        assert "Traceback" not in captured.err


def test_corrupt_example_requests_are_named(whole_export, in_tmp, capsys):
    version = pathlib.Path("saved_models/m/1")
    shutil.copytree(whole_export, version)
    (version / saved_model_module.EXAMPLES_FILE).write_text('{"task": ')
    with pytest.raises(ValueError, match=r"Expected the example requests as JSON.*corrupt"):
        serve_check("saved_models/m")
    assert cli.main(["serve-check", "saved_models/m"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "keras_seqcells_examples.json" in err


def test_the_cli_reports_a_missing_variables_folder_in_one_line(whole_export, in_tmp):
    version = pathlib.Path("saved_models/m/1")
    shutil.copytree(whole_export, version)
    shutil.rmtree(version / "variables")
    done = subprocess.run(
        [sys.executable, "-m", "keras_seqcells.cli", "serve-check", "saved_models/m"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and done.stdout == ""
    ours = [line for line in done.stderr.splitlines() if line.startswith("keras-seqcells")]
    assert ours == [
        "keras-seqcells serve-check: FAILED: Expected a SavedModel with a variables folder. "
        "Received: path='saved_models/m/1' (variables/ is missing)"
    ]


# -------------------------------------------------------------- unsafe paths
@pytest.mark.parametrize(
    "path",
    ["taken", "saved_models/m/..", "", " ", ".", "saved_models/3"],  # taken: a file
)
def test_the_cli_refuses_export_paths_that_name_no_model(path, in_tmp, capsys):
    dense_model().save("model.keras")
    pathlib.Path("taken").write_text("a file")
    before = sorted(os.listdir(in_tmp)), sorted(os.listdir(in_tmp.parent))
    assert cli.main(["export", "model.keras", path, "--no-xla"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("keras-seqcells export: error: Expected `path` to be a")
    assert f"Received: path={path!r}" in err
    assert (sorted(os.listdir(in_tmp)), sorted(os.listdir(in_tmp.parent))) == before
    assert pathlib.Path("taken").read_text() == "a file"


def test_the_cli_exports_to_an_absolute_path_or_a_name_under_a_root(in_tmp, capsys):
    dense_model().save("model.keras")
    absolute = in_tmp / "models" / "m"
    assert cli.main(["export", "model.keras", str(absolute), "--no-xla"]) == 0
    assert cli.main(["export", "model.keras", "--name", "m", "--root", "models", "--no-xla"]) == 0
    assert cli.main(["export", "model.keras", "--name", "m", "--no-xla"]) == 0
    assert versions(absolute) == [1, 2]
    assert versions("saved_models/m") == [1]
    assert capsys.readouterr().out.splitlines()[-1] == "exported: saved_models/m/1"


@pytest.mark.parametrize("name", ["../x", "a/../../x", "ABSOLUTE", "..", "3", "a/b"])
def test_the_cli_refuses_names_that_could_leave_the_root(name, in_tmp, capsys):
    dense_model().save("model.keras")
    if name == "ABSOLUTE":
        name = str(in_tmp / "absolute")
    before = sorted(os.listdir(in_tmp)), sorted(os.listdir(in_tmp.parent))
    assert cli.main(["export", "model.keras", "--name", name, "--no-xla"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("keras-seqcells export: error: Expected `name` to be a model name")
    assert f"Received: name={name!r}" in err
    assert (sorted(os.listdir(in_tmp)), sorted(os.listdir(in_tmp.parent))) == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "Expected either PATH"),
        (["saved_models/m", "--name", "m"], "Expected either PATH"),
        (["saved_models/m", "--root", "r"], "Expected --root only with --name"),
    ],
)
def test_the_cli_takes_either_a_path_or_a_name(arguments, message, in_tmp, capsys):
    dense_model().save("model.keras")
    assert cli.main(["export", "model.keras", *arguments, "--no-xla"]) == 2
    assert message in capsys.readouterr().err
    assert sorted(os.listdir(in_tmp)) == ["model.keras"]


@pytest.mark.parametrize(
    "path", ["saved_models/m/..", ".", "a/./b/../..", "saved_models/m/007", ""]
)
def test_the_api_refuses_more_unsafe_export_paths(path, in_tmp):
    with pytest.raises(ValueError, match=r"Expected `path` to be a .*Received: path="):
        export(dense_model(), path, xla=False)
    assert os.listdir(in_tmp) == []


def test_serve_check_of_a_file_or_a_missing_folder_is_an_error(in_tmp, capsys):
    pathlib.Path("file").write_text("")
    # A folder without versions is a usage error (2); a version folder that is not
    # there fails the check (1).
    for path, code in (("file", 2), ("missing", 2), ("missing/1", 1)):
        assert cli.main(["serve-check", path]) == code
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and repr(path) in err, err


# --------------------------------------------------------------- concurrency
REQUESTS = 100


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A text classifier (string input) and a forecaster (float input), exported."""
    folder = tmp_path_factory.mktemp("served")
    with _working_directory(folder):
        classifier = export(
            task_model("text-classification", "gru", folder), "saved_models/c", xla=False
        )
        forecaster = task_model("forecasting", "lstm", folder)
        window = forecaster.inputs[0].shape[1]
        forecaster = export(forecaster, "saved_models/f", xla=False)
    words = ["a", "fine", "film", "with", "a", "dull", "plot", "and", "great", "acting", "poor"]
    rng = np.random.default_rng(0)
    texts = [
        [" ".join(rng.choice(words, size=rng.integers(1, 12))) for _ in range(1 + i % 3)]
        for i in range(REQUESTS)
    ]
    windows = [
        rng.normal(size=(1 + i % 4, window)).astype("float32").cumsum(axis=1)
        for i in range(REQUESTS)
    ]
    return {
        "text": (folder / classifier, [{"text": t} for t in texts]),
        "window": (folder / forecaster, [{"window": w} for w in windows]),
    }


def _concurrently(call, feeds):
    """Runs `call` on every feed from 16 threads at once; bounded in time."""
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(call, feed) for feed in feeds]
        answers = [future.result(timeout=60) for future in futures]
    assert time.monotonic() - start < 60
    return answers


def _assert_same(got, expected):
    assert len(got) == len(expected) == REQUESTS
    for one, other in zip(got, expected, strict=True):
        assert sorted(one) == sorted(other)
        for name in one:
            np.testing.assert_array_equal(np.asarray(one[name]), np.asarray(other[name]))


@pytest.mark.parametrize("kind", ["text", "window"])
def test_concurrent_requests_to_the_cpp_loader_answer_like_sequential_ones(kind, served):
    path, feeds = served[kind]
    with CppLoaded(path) as loaded:
        sequential = [loaded.run("serving_default", feed) for feed in feeds]
        concurrent_answers = _concurrently(lambda f: loaded.run("serving_default", f), feeds)
    _assert_same(concurrent_answers, sequential)


@pytest.mark.parametrize("kind", ["text", "window"])
def test_concurrent_requests_to_the_tf2_loader_answer_like_sequential_ones(kind, served):
    path, feeds = served[kind]
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]

    def call(feed):
        name, value = next(iter(feed.items()))
        return {key: out.numpy() for key, out in serve(**{name: tf.constant(value)}).items()}

    sequential = [call(feed) for feed in feeds]
    _assert_same(_concurrently(call, feeds), sequential)
    with CppLoaded(path) as loaded:  # and both loaders agree
        _assert_same([loaded.run("serving_default", feed) for feed in feeds], sequential)


# ------------------------------------------------------- committed examples
COMMITTED = sorted(
    path.relative_to(EXAMPLE_EXPORTS).as_posix()
    for path in EXAMPLE_EXPORTS.glob("*/*")
    if path.is_dir() and path.name.isdigit()
)


def test_every_configured_example_is_committed():
    config = (EXAMPLE_EXPORTS / "models.config").read_text()
    names = set(re.findall(r'name: "(\w+)"', config))
    assert names == {version.split("/")[0] for version in COMMITTED}
    assert len(COMMITTED) >= 4


@pytest.mark.parametrize("version", COMMITTED)
def test_committed_examples_hold_no_python_calls(version):
    path = EXAMPLE_EXPORTS / version
    check_files(path)
    ops = check_graph(path)
    assert not ops & PYTHON_OPS
    # Read the graph once more without our helper: every node of every function.
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    nodes = [n.op for g in proto.meta_graphs for n in g.graph_def.node] + [
        n.op for g in proto.meta_graphs for f in g.graph_def.library.function for n in f.node_def
    ]
    assert nodes and not set(nodes) & PYTHON_OPS
    assert not [op for op in nodes if op.startswith("Cudnn")]


def test_hostname_is_safe_in_a_folder_name():
    owner = saved_model_module._owner()
    assert re.fullmatch(r"\d+@[A-Za-z0-9_.]+", owner)
    assert owner.endswith(re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:64])
