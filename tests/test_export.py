"""Export to TF Serving SavedModels: answers, step signatures, versions, atomicity, checks."""

import functools
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_seqcells as ks
from keras_seqcells import cli
from keras_seqcells.serving import (
    StepError,
    check_graph,
    export,
    model_folder,
    newest_version,
    read_examples,
    serve_check,
    versions,
)
from keras_seqcells.serving import saved_model as saved_model_module
from keras_seqcells.serving.serve_check import (
    WITHOUT_PACKAGE,
    CppLoaded,
    ServeCheckError,
    check_fresh_load,
    check_request,
    check_saved_model_cli,
    parse_rest,
    parse_saved_model_cli,
    predict_request,
    run_isolated,
)
from keras_seqcells.serving.signatures import tokenize
from keras_seqcells.stepping import ModelStepper
from keras_seqcells.tasks import get_task
from keras_seqcells.tasks.next_word import tokenize as python_tokenize
from tests.task_helpers import tiny_settings

CELLS = ("simple_rnn", "lstm", "gru")
GRPC_LINE = "gRPC PredictRequest: protobuf round trip (no server), fits the signature, same answers"
SAVED_MODEL_CLI_LINE = "saved_model_cli run (python -I, no keras_seqcells): same answers"
FRESH_LOAD_LINE = (
    "tf.saved_model.load in a fresh python -I process without keras_seqcells: same answers"
)
#: Small versions of each task's model (built on a few examples, not trained).
TASK_OPTIONS = {
    "text-classification": {"max_tokens": 200},
    "tagging": {"max_length": 6, "feature_bins": 20, "embedding_dim": 8, "feature_dim": 4},
    "next-word": {"sequence_length": 8, "embedding_dim": 8},
    # The `step` signature needs the recurrent layer's own forecast, with no baseline added.
    "forecasting": {"reference": "none"},
}
#: One cell per task in the quick tests (all three cells appear); all pairs are slow tests.
QUICK = [
    ("text-classification", "simple_rnn"),
    ("tagging", "gru"),
    ("next-word", "lstm"),
    ("forecasting", "gru"),
]
SLOW = [
    pytest.param(task, cell, marks=pytest.mark.slow)
    for task in TASK_OPTIONS
    for cell in CELLS
    if (task, cell) not in QUICK
]


def task_model(task_name, cell, tmp_path, seed=0):
    task = get_task(task_name, **TASK_OPTIONS[task_name])
    data = task.load_data(limit=40)
    keras.utils.set_random_seed(seed)
    model = task.build_model(data, tiny_settings(tmp_path, cell=cell, seed=seed))
    return task.inference_model(model)


def _layer(cell, units=4, **kwargs):
    return ks.layers.layer_for_cell(cell)(units, **kwargs)


def sequence_model(cell, return_sequences=True, stacked=False, layer=None):
    inputs = keras.Input((None, 3), name="features")
    x = keras.layers.Dense(5, activation="relu", name="project")(inputs)
    if stacked:
        x = _layer(cell, return_sequences=True, name="first")(x)
    x = (layer or _layer(cell, return_sequences=return_sequences, name="rnn"))(x)
    outputs = keras.layers.Dense(2, name="scores")(x)
    return keras.Model(inputs, outputs)


def dense_model():
    """The cheapest model to export (no recurrent layer, so no step signature)."""
    inputs = keras.Input((3,), name="x")
    return keras.Model(inputs, keras.layers.Dense(2, name="y")(inputs))


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Runs the test in `tmp_path` (exports take relative folders)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ------------------------------------------------------------ task answers
@pytest.mark.parametrize(("task_name", "cell"), QUICK + SLOW)
def test_task_export_answers_like_the_keras_model(task_name, cell, in_tmp):
    model = task_model(task_name, cell, in_tmp)
    path = export(model, f"saved_models/{task_name}", xla=task_name == "forecasting")
    assert path == pathlib.Path(f"saved_models/{task_name}/1")
    # tf.compat.v1 loader; the example requests, REST bodies and gRPC request; step vs whole
    # sequence where the model has a step; and the Keras model's own answers.
    report = serve_check(f"saved_models/{task_name}", model=model, fresh_process=False)
    assert report[-1] == "serving_default: the Keras model's answers"
    step = task_name in ("next-word", "forecasting")
    assert any(line.startswith("step:") for line in report) == step
    assert ("step" in CppLoaded(path).signatures) == step
    if task_name == "text-classification":
        notes = read_examples(path)["notes"]
        assert any("bidirectional layer needs the whole sequence" in note for note in notes)


def test_next_word_tokenizer_in_the_graph_matches_python():
    texts = [
        "The just man -- is he not happy?",
        "Don't  you see, Socrates; (said he) that_it's 3.50 or 12,000?",
        "Ünïcödé\u00a0words\u2003and\ttabs\nnew lines",
        "",
        "   ",
        "it's' ''quoted'' --- dashes - and __under__ scores",
    ]
    got = [[t.decode() for t in row] for row in tokenize(tf.constant(texts)).to_list()]
    assert got == [python_tokenize(text) for text in texts]


# -------------------------------------------------------------------- step
def _step_through(loaded, sequences, input_name="features"):
    state = loaded.signatures["initial_state"](batch_size=tf.constant(len(sequences)))
    outputs = []
    for t in range(sequences.shape[1]):
        result = loaded.signatures["step"](**{input_name: sequences[:, t]}, **state)
        state = {name: result[name] for name in state}
        outputs.append(result)
    return outputs, state


@pytest.mark.parametrize("cell", CELLS)
def test_step_over_a_sequence_equals_the_whole_sequence(cell, in_tmp):
    model = sequence_model(cell, stacked=cell == "lstm")
    export(model, "saved_models/seq", xla=False)
    loaded = tf.saved_model.load("saved_models/seq/1")
    sequences = np.random.default_rng(1).normal(size=(2, 7, 3)).astype("float32")
    whole = loaded.signatures["serving_default"](features=sequences)["scores"].numpy()
    np.testing.assert_allclose(whole, model.predict(sequences, verbose=0), rtol=1e-5, atol=1e-6)
    steps, state = _step_through(loaded, sequences)
    stepped = np.stack([step["scores"].numpy() for step in steps], axis=1)
    np.testing.assert_allclose(stepped, whole, rtol=1e-5, atol=1e-6)
    expected_states = {"lstm": ["first_state_c", "first_state_h", "rnn_state_c", "rnn_state_h"]}
    assert sorted(state) == expected_states.get(cell, ["state_h"])
    assert all(s.dtype == tf.float32 for s in state.values())


def test_step_of_a_many_to_one_model_ends_on_its_answer(in_tmp):
    model = sequence_model("simple_rnn", return_sequences=False)
    export(model, "saved_models/last", xla=False)
    loaded = tf.saved_model.load("saved_models/last/1")
    sequences = np.random.default_rng(2).normal(size=(3, 5, 3)).astype("float32")
    steps, _ = _step_through(loaded, sequences)
    np.testing.assert_allclose(
        steps[-1]["scores"].numpy(), model.predict(sequences, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_top_level_export_and_serve_check_are_the_serving_functions(in_tmp):
    model = sequence_model("gru", layer=ks.GRU(4, return_sequences=True, name="rnn"))
    path = ks.export(model, "saved_models/top_level", xla=False)
    assert path == pathlib.Path("saved_models/top_level/1")
    report = ks.serve_check("saved_models/top_level", model=model, grpc=False, fresh_process=False)
    assert any(line.startswith("serving_default") for line in report)


def test_keras_lstm_model_exports_with_step_and_xla(in_tmp):
    model = sequence_model("lstm", layer=keras.layers.LSTM(4, return_sequences=True, name="rnn"))
    path = export(model, "saved_models/keras_lstm")
    report = serve_check("saved_models/keras_lstm", model=model, fresh_process=False)
    assert "serving_xla: same answers as serving_default" in report
    assert "step: a sequence fed step by step gives the serving_default answer" in report
    assert "Cudnn" not in " ".join(check_graph(path))


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (keras.layers.Bidirectional(ks.GRU(4, return_sequences=True)), "bidirectional"),
        (ks.GRU(4, return_sequences=True, go_backwards=True), "go_backwards=True"),
    ],
)
def test_step_is_refused_where_it_cannot_run(layer, message, in_tmp):
    model = sequence_model("gru", layer=layer)
    with pytest.raises(StepError, match=message):
        ModelStepper(model)
    path = export(model, "saved_models/refused", xla=False)
    assert "step" not in tf.saved_model.load(path).signatures
    assert any(message in note for note in read_examples(path)["notes"])


# ------------------------------------------------------------ portability
def test_fresh_process_loads_without_the_package(in_tmp):
    model = task_model("next-word", "gru", in_tmp)
    path = export(model, "saved_models/words", xla=False)
    script = textwrap.dedent(
        f"""
        import json, sys
        import tensorflow as tf
        loaded = tf.saved_model.load({str(path)!r})
        result = loaded.signatures["serving_default"](prompt=tf.constant(["the just man"]))
        assert "keras_seqcells" not in sys.modules
        print(json.dumps([w.decode() for w in result["top_words"].numpy()[0]]))
        """
    )
    env = {**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=in_tmp
    )
    assert done.returncode == 0, done.stderr[-2000:]
    words = json.loads(done.stdout.strip().splitlines()[-1])
    expected = get_task("next-word").predict(model, ["the just man"])[0]
    assert words == [word for word, _ in expected]


def test_graph_has_no_python_or_gpu_only_ops(in_tmp):
    model = task_model("forecasting", "lstm", in_tmp)
    path = export(model, "saved_models/forecaster")
    ops = check_graph(path)
    assert not ops & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}
    assert not [op for op in ops if op.startswith("Cudnn")]


def test_a_gpu_only_op_is_found(in_tmp):
    class WithCudnn(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([2, 1, 3], tf.float32)], autograph=False)
        def run(self, x):
            zeros = tf.zeros([1, 1, 3])
            return tf.raw_ops.CudnnRNN(
                input=x, input_h=zeros, input_c=zeros, params=tf.zeros([100]), rnn_mode="lstm"
            )[0]

    module = WithCudnn()
    tf.saved_model.save(module, "cudnn", signatures={"serving_default": module.run})
    with pytest.raises(ValueError, match=r"ops without a CPU kernel \['CudnnRNN'\]"):
        check_graph("cudnn")


def test_plain_signatures_are_traced_portably(in_tmp, monkeypatch):
    seen = {}
    original = ks.layers.SeqCellRNN.call

    @functools.wraps(original)
    def recording_call(self, *args, **kwargs):
        seen.setdefault(ks.layers.loops._PORTABLE_GRAPHS.get(), 0)
        seen[ks.layers.loops._PORTABLE_GRAPHS.get()] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ks.layers.SeqCellRNN, "call", recording_call)
    export(sequence_model("gru"), "saved_models/m")
    assert set(seen) == {True}


def test_a_python_call_in_the_graph_is_refused_and_leaves_nothing(in_tmp):
    inputs = keras.Input((3,), name="x")
    outputs = keras.layers.Lambda(
        lambda x: tf.py_function(lambda v: v * 2, [x], tf.float32), output_shape=(3,)
    )(inputs)
    model = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match="without Python calls"):
        export(model, "saved_models/python", xla=False)
    assert os.listdir("saved_models/python") == []


# ---------------------------------------------------------------- versions
def test_versions_number_up_and_existing_ones_are_kept(in_tmp):
    model = dense_model()
    assert export(model, "saved_models/m", xla=False).name == "1"
    assert export(model, "saved_models/m", version=7, xla=False).name == "7"
    assert export(model, "saved_models/m", xla=False).name == "8"
    assert versions("saved_models/m") == [1, 7, 8]
    assert newest_version("saved_models/m")[0] == 8
    with pytest.raises(ValueError, match=r"Expected a new version .*version=7 \(exists"):
        export(model, "saved_models/m", version=7, xla=False)
    marker = pathlib.Path("saved_models/m/7/marker")
    marker.write_text("old")
    assert export(model, "saved_models/m", version=7, overwrite=True, xla=False).name == "7"
    assert not marker.exists()
    assert sorted(os.listdir("saved_models/m")) == ["1", "7", "8"]


@pytest.mark.parametrize("path", ["", "  ", "saved_models/3", "saved_models/m/..", "."])
def test_export_paths_that_name_no_model_are_refused(path, in_tmp):
    with pytest.raises(ValueError, match=r"Expected `path` to be a .*Received: path="):
        export(dense_model(), path, xla=False)
    assert os.listdir(in_tmp) == []


def test_absolute_and_relative_paths_of_the_caller_are_accepted(in_tmp):
    # TF Serving's convention is an absolute base path (--model_base_path=/models/<name>).
    absolute = in_tmp / "models" / "m"
    assert export(dense_model(), absolute, xla=False) == absolute / "1"
    assert export(dense_model(), str(absolute), xla=False) == absolute / "2"
    os.mkdir("work")
    os.chdir("work")
    assert export(dense_model(), "../beside/m", xla=False) == pathlib.Path("../beside/m/1")
    assert ks.export(dense_model(), "../beside/m", xla=False) == pathlib.Path("../beside/m/2")
    assert versions(in_tmp / "beside" / "m") == [1, 2]
    assert serve_check(absolute, grpc=False, fresh_process=False)


@pytest.mark.parametrize("name", ["tagger", "next_word", "v1.2-b", "Model7"])
def test_model_folder_puts_a_name_under_its_root(name, in_tmp):
    assert model_folder("saved_models", name) == pathlib.Path("saved_models", name)
    assert model_folder(in_tmp, name) == in_tmp / name


@pytest.mark.parametrize(
    "name", ["../x", "a/../../x", "a/b", "..", ".", ".hidden", "/abs", "3", "", " x", "a\\b", None]
)
def test_model_folder_refuses_names_that_could_leave_the_root(name, in_tmp):
    with pytest.raises(ValueError, match=r"Expected `name` to be a model name .*Received: name="):
        model_folder("saved_models", name)


def test_a_file_in_place_of_the_folder_is_refused(in_tmp):
    pathlib.Path("saved_models").mkdir()
    pathlib.Path("saved_models/taken").write_text("")
    with pytest.raises(ValueError, match=r"Received: path='saved_models/taken' \(an existing file"):
        export(dense_model(), "saved_models/taken", xla=False)
    with pytest.raises(ValueError, match="positive integer"):
        export(dense_model(), "saved_models/m", version=0)
    with pytest.raises(ValueError, match="Expected `task` to be one of"):
        export(dense_model(), "saved_models/m", task="poetry")


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_interrupted_export_leaves_the_versions_intact(overwrite, in_tmp, monkeypatch):
    model = dense_model()
    export(model, "saved_models/m", xla=False)
    before = sorted(p.relative_to("saved_models") for p in pathlib.Path("saved_models").rglob("*"))
    original = tf.saved_model.save

    def failing_save(obj, export_dir, *args, **kwargs):
        original(obj, export_dir, *args, **kwargs)  # half the job done, then a failure
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", failing_save)
    version = 1 if overwrite else None
    with pytest.raises(RuntimeError, match="disk full"):
        export(model, "saved_models/m", version=version, overwrite=overwrite, xla=False)
    after = sorted(p.relative_to("saved_models") for p in pathlib.Path("saved_models").rglob("*"))
    assert after == before
    assert os.listdir("saved_models/m") == ["1"]
    monkeypatch.setattr(tf.saved_model, "save", original)
    assert serve_check("saved_models/m", model=model, fresh_process=False)


# -------------------------------------------------------------- bad inputs
def test_bad_inputs_to_signatures_fail_clearly(in_tmp):
    model = task_model("text-classification", "gru", in_tmp)
    export(model, "saved_models/classifier", xla=False)
    serve = tf.saved_model.load("saved_models/classifier/1").signatures["serving_default"]
    with pytest.raises((TypeError, tf.errors.InvalidArgumentError), match="string"):
        serve(text=tf.constant([1.0, 2.0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Shape of tensor text \[1,2\]"):
        serve(text=tf.constant([["a", "b"]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Expected non-empty texts"):
        serve(text=tf.constant(["a fine film", "  "]))
    with CppLoaded("saved_models/classifier/1") as loaded:
        with pytest.raises(ServeCheckError, match="Expected strings in input 'text'"):
            loaded.run("serving_default", {"text": [1.0]})
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[1,1\] is not compatible"):
            loaded.run("serving_default", {"text": [["a"]]})
        with pytest.raises(ServeCheckError, match=r"Expected the inputs \['text'\]"):
            loaded.run("serving_default", {"sentence": ["a"]})
        with pytest.raises(tf.errors.InvalidArgumentError, match="Expected non-empty texts"):
            loaded.run("serving_default", {"text": [""]})
        signature = loaded.signature("serving_default")
        with pytest.raises(ServeCheckError, match='Expected a body with "instances" or "inputs"'):
            parse_rest({"examples": ["a"]}, signature)
        request = predict_request("classifier", "serving_default", {"text": ["a"]}, signature)
        assert request.inputs["text"].dtype == tf.string.as_datatype_enum


def test_bad_windows_and_prompts_fail_clearly(in_tmp):
    forecaster = task_model("forecasting", "gru", in_tmp)
    export(forecaster, "saved_models/forecaster", xla=False)
    serve = tf.saved_model.load("saved_models/forecaster/1").signatures["serving_default"]
    window = forecaster.inputs[0].shape[1]
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"Expected windows of {window}"):
        serve(window=tf.zeros((1, window + 1)))
    with pytest.raises((TypeError, tf.errors.InvalidArgumentError), match="float"):
        serve(window=tf.constant([["1"] * window]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Expected finite values"):
        serve(window=tf.fill((1, window), np.nan))
    words = task_model("next-word", "simple_rnn", in_tmp)
    export(words, "saved_models/words", xla=False)
    serve = tf.saved_model.load("saved_models/words/1").signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="Expected prompts with words"):
        serve(prompt=tf.constant(["the just man", " _ "]))
    signature = CppLoaded("saved_models/words/1").signature("serving_default")
    with pytest.raises(ServeCheckError, match="Expected numbers"):
        check_request(
            CppLoaded("saved_models/forecaster/1").signature("serving_default"), {"window": [["a"]]}
        )
    assert check_request(signature, {"prompt": ["a"]})["prompt"].dtype == object


# --------------------------------------------------------------------- CLI
def test_cli_export_and_serve_check(in_tmp, capsys):
    model = task_model("forecasting", "simple_rnn", in_tmp)
    model.save("model.keras")
    assert cli.main(["export", "model.keras", "saved_models/forecaster", "--no-xla"]) == 0
    assert "exported: saved_models/forecaster/1" in capsys.readouterr().out
    assert cli.main(["serve-check", "saved_models/forecaster", "--model", "model.keras"]) == 0
    out = capsys.readouterr().out
    assert GRPC_LINE in out
    assert SAVED_MODEL_CLI_LINE in out and FRESH_LOAD_LINE in out
    assert "not TF Serving's LoadSavedModel" in out.splitlines()[0]
    assert out.strip().endswith("serve-check: OK")
    assert cli.main(["export", "model.keras", "saved_models/forecaster", "--version", "1"]) == 2
    assert "Expected a new version" in capsys.readouterr().err
    assert cli.main(["serve-check", "saved_models/none"]) == 2
    assert "no version" in capsys.readouterr().err


def test_the_fresh_process_checks_compare_the_answers(in_tmp):
    path = export(dense_model(), "saved_models/m", xla=False)
    feed = read_examples(path)["signatures"]["serving_default"]
    with CppLoaded(path) as loaded:
        answers = loaded.run("serving_default", feed)
    # The right answers pass in test_cli_export_and_serve_check; each process costs seconds.
    wrong = {"y": answers["y"] + 0.01}
    with pytest.raises(ServeCheckError, match=r"saved_model_cli output 'y' equal"):
        check_saved_model_cli(path, feed, wrong)
    with pytest.raises(ServeCheckError, match=r"fresh tf\.saved_model\.load output 'y' equal"):
        check_fresh_load(path, feed, wrong)


def test_the_fresh_processes_cannot_import_the_package(in_tmp):
    script = WITHOUT_PACKAGE + "import keras_seqcells\n"
    with pytest.raises(ServeCheckError, match=r"exit status 1 .*ModuleNotFoundError"):
        run_isolated(script, [], in_tmp, "an import")
    done = run_isolated("import sys; print(sys.flags.isolated)", [], in_tmp, "")
    assert done.strip() == "1"


def test_saved_model_cli_output_is_parsed_in_full():
    stdout = (
        "INFO: restoring\nResult for output key label:\n[b'it\\'s' b\"caf\\xc3\\xa9\"]\n"
        "Result for output key probabilities:\n[[0.5 1.e-05]\n [2.5e+01 -3.]]\n"
    )
    expected = {
        "label": np.array(["it's", "café"], dtype=object),
        "probabilities": np.array([[0.5, 1e-5], [25.0, -3.0]], dtype="float32"),
    }
    parsed = parse_saved_model_cli(stdout, expected)
    assert parsed["label"].tolist() == ["it's", "café"]
    np.testing.assert_array_equal(parsed["probabilities"], expected["probabilities"])
    with pytest.raises(ServeCheckError, match=r"of 4 values\. Received: 3"):
        parse_saved_model_cli(
            stdout.replace(" -3.]", "]"), {"probabilities": expected["probabilities"]}
        )


def test_serve_check_reports_a_wrong_model(in_tmp):
    model = sequence_model("gru")
    export(model, "saved_models/m", xla=False)
    other = sequence_model("gru")
    with pytest.raises(ServeCheckError, match="within float32 rounding"):
        serve_check("saved_models/m", model=other, fresh_process=False)


def test_missing_serving_api_gives_a_clear_error(in_tmp, monkeypatch):
    export(sequence_model("gru"), "saved_models/m", xla=False)
    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)
    with pytest.raises(ImportError, match="pip install tensorflow-serving-api"):
        serve_check("saved_models/m", fresh_process=False)
    assert serve_check("saved_models/m", grpc=False, fresh_process=False)


def test_exports_are_small_enough_to_load_fast(in_tmp):
    path = export(sequence_model("lstm"), "saved_models/m", xla=False)
    assert saved_model_module.EXAMPLES_FILE.parts[0] == "assets.extra"
    assert (path / saved_model_module.EXAMPLES_FILE).is_file()
    assert sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) < 2_000_000


def test_each_weight_is_stored_once(in_tmp):
    inputs = keras.Input((None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(5000, 32, name="embedding")(inputs)
    x = ks.GRU(8, name="rnn")(x)
    model = keras.Model(inputs, keras.layers.Dense(1, name="score")(x))
    path = export(model, "saved_models/m", xla=False)
    shapes = tf.train.load_checkpoint(str(path / "variables" / "variables"))
    shapes = [shape for shape in shapes.get_variable_to_shape_map().values() if shape]
    assert shapes.count([5000, 32]) == 1
    weights_bytes = 4 * model.count_params()
    data = sum(f.stat().st_size for f in (path / "variables").glob("variables.data-*"))
    assert weights_bytes <= data < 1.1 * weights_bytes
    np.testing.assert_allclose(
        tf.saved_model.load(str(path)).signatures["serving_default"](ids=tf.constant([[1, 2, 3]]))[
            "score"
        ],
        model.predict(np.array([[1, 2, 3]]), verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize(("umask", "folder_mode"), [(0o022, 0o755), (0o077, 0o700)])
def test_version_folders_have_the_modes_of_the_umask(umask, folder_mode, in_tmp):
    # A server in a container often runs as another user: with the usual umask
    # it must be able to read the version that export renamed into place.
    previous = os.umask(umask)
    try:
        path = export(dense_model(), "saved_models/m", xla=False)
    finally:
        os.umask(previous)
    folders = [path, *(p for p in path.rglob("*") if p.is_dir())]
    assert {oct(folder.stat().st_mode & 0o777) for folder in folders} == {oct(folder_mode)}
    files = [p for p in path.rglob("*") if p.is_file()]
    assert all(f.stat().st_mode & 0o644 & ~umask == 0o644 & ~umask for f in files)


EXAMPLE_EXPORTS = pathlib.Path(__file__).resolve().parent.parent / "saved_models"


@pytest.mark.parametrize(
    "name",
    [
        "forecaster",
        pytest.param("next_word", marks=pytest.mark.slow),
        pytest.param("tagger", marks=pytest.mark.slow),
        pytest.param("text_classifier", marks=pytest.mark.slow),
    ],
)
def test_committed_example_exports_pass_serve_check(name):
    report = serve_check(EXAMPLE_EXPORTS / name, fresh_process=False)
    assert GRPC_LINE in report


def test_a_model_with_two_named_inputs_and_outputs(in_tmp):
    left, right = keras.Input((3,), name="left"), keras.Input((2,), name="right")
    joined = keras.layers.Concatenate()([left, right])
    model = keras.Model(
        [left, right],
        [keras.layers.Dense(1, name="score")(joined), keras.layers.Dense(2, name="other")(joined)],
    )
    path = export(model, "saved_models/two", xla=False)
    report = serve_check("saved_models/two", model=model, fresh_process=False)
    assert (
        "REST body {'instances': ...}: parsed as TF Serving reads it (no server), "
        "fits the signature, same answers"
    ) in report
    signature = CppLoaded(path).signature("serving_default")
    assert sorted(signature.inputs) == ["left", "right"]
    assert sorted(signature.outputs) == ["other", "score"]


@pytest.mark.slow
def test_saved_model_cli_runs_an_export(in_tmp):
    model = task_model("next-word", "gru", in_tmp)
    path = export(model, "saved_models/words", xla=False)
    cli_path = pathlib.Path(sys.executable).with_name("saved_model_cli")
    done = subprocess.run(
        [
            str(cli_path),
            "run",
            "--dir",
            str(path),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--input_exprs",
            'prompt=["the just man"]',
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = get_task("next-word").predict(model, ["the just man"])[0][0][0]
    assert f"b'{expected}'" in done.stdout.split("top_words")[-1]
