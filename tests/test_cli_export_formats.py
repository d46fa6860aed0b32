"""`keras-seqcells export --format` and `serve-check` of ONNX and LiteRT files."""

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from keras_seqcells import cli, deploy


def _run(argv, capsys):
    status = cli.main(argv)
    return status, capsys.readouterr()


def _save(model, tmp_path, name="model.keras"):
    path = tmp_path / name
    model.save(path)
    return str(path)


@pytest.fixture
def lstm_model_path(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((None, 3)), ks.LSTM(4), keras.layers.Dense(2, activation="tanh")]
    )
    return _save(model, tmp_path)


@pytest.mark.parametrize("streaming", [False, True])
def test_onnx_export_and_serve_check_agree_with_keras(streaming, lstm_model_path, tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    destination = str(tmp_path / "lstm.onnx")
    argv = ["export", lstm_model_path, destination, "--format", "onnx"]
    status, captured = _run(argv + (["--streaming"] if streaming else []), capsys)
    assert status == 0, captured.err
    status, captured = _run(["serve-check", destination, "--model", lstm_model_path], capsys)
    assert status == 0, captured.err
    assert "fresh python -I process" in captured.out
    assert "state_c (2, 4)" in captured.out if streaming else "inputs (2, 5, 3)" in captured.out
    assert "output 'outputs': largest difference" in captured.out
    assert captured.out.rstrip().endswith("serve-check: OK")


def test_serve_check_fails_for_a_file_of_other_weights(lstm_model_path, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    destination = str(tmp_path / "lstm.onnx")
    assert _run(["export", lstm_model_path, destination, "--format", "onnx"], capsys)[0] == 0
    other = keras.models.load_model(lstm_model_path)
    other.set_weights([w + 0.1 for w in other.get_weights()])
    other_path = _save(other, tmp_path, "other.keras")
    status, captured = _run(["serve-check", destination, "--model", other_path], capsys)
    assert status == 1
    assert "FAILED" in captured.err and "largest relative difference" in captured.err


def test_serve_check_without_model_only_runs_the_file(lstm_model_path, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    destination = str(tmp_path / "lstm.onnx")
    assert _run(["export", lstm_model_path, destination, "--format", "onnx"], capsys)[0] == 0
    status, captured = _run(["serve-check", destination], capsys)
    assert status == 0
    assert "answers not compared" in captured.out


def test_bad_format_is_refused_by_the_parser(lstm_model_path, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", lstm_model_path, str(tmp_path / "x.onnx"), "--format", "tflite"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--format", "onnx", "--quantize", "int8"], "quantize` only with format='litert'"),
        (["--quantize", "float16"], "quantize` only with format='litert'"),
        (["--streaming"], "streaming` only with format='litert' or 'onnx'"),
        (["--format", "onnx", "--version", "2"], "no SavedModel options"),
        (["--sequence-length", "5"], "--sequence-length and --batch-size only with"),
        (["--format", "onnx", "--batch-size", "2"], "`batch_size` only with format='litert'"),
    ],
)
def test_options_that_do_not_go_together_are_refused(
    extra, message, lstm_model_path, tmp_path, capsys
):
    status, captured = _run(["export", lstm_model_path, str(tmp_path / "x.onnx"), *extra], capsys)
    assert status == 2
    assert message in captured.err
    assert not (tmp_path / "x.onnx").exists()


def test_a_file_without_its_format_suffix_is_refused(lstm_model_path, tmp_path, capsys):
    status, captured = _run(
        ["export", lstm_model_path, str(tmp_path / "x.bin"), "--format", "onnx"], capsys
    )
    assert status == 2
    assert "Expected a path ending in .onnx" in captured.err


@pytest.mark.parametrize("name", ["missing.onnx", "missing.tflite"])
def test_serve_check_of_a_missing_file(name, tmp_path, capsys):
    status, captured = _run(["serve-check", str(tmp_path / name)], capsys)
    assert status == 2
    assert f"Expected an existing {name[7:]} file" in captured.err


def test_other_paths_are_checked_as_saved_models(tmp_path, capsys):
    unknown = tmp_path / "model.bin"
    unknown.write_bytes(b"\0")
    assert deploy.detect_format(unknown) == "saved_model"
    status, captured = _run(["serve-check", str(unknown)], capsys)
    assert status == 2 and "Expected an export folder holding numbered versions" in captured.err


def test_serve_check_refuses_saved_model_options_for_a_file(lstm_model_path, tmp_path, capsys):
    pytest.importorskip("onnx")
    destination = str(tmp_path / "lstm.onnx")
    assert _run(["export", lstm_model_path, destination, "--format", "onnx"], capsys)[0] == 0
    status, captured = _run(["serve-check", destination, "--no-grpc"], capsys)
    assert status == 2 and "--no-grpc" in captured.err


def test_a_corrupt_file_fails_in_the_runtime(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    status, captured = _run(["serve-check", str(broken)], capsys)
    assert status == 1
    assert "fresh process with only the onnx runtime" in captured.err


def test_compare_answers_applies_the_tolerance_relative_to_the_answer():
    expected = [np.array([[100.0, 0.5]], "float32")]
    near = {"outputs": np.array([[100.0005, 0.500004]], "float32"), "next_state_h": np.ones(1)}
    assert len(deploy.compare_answers(near, expected, 1e-5)) == 1
    far = {"outputs": np.array([[100.0, 0.50002]], "float32")}
    with pytest.raises(deploy.DeployCheckError, match="largest relative difference"):
        deploy.compare_answers(far, expected, 1e-5)
    with pytest.raises(deploy.DeployCheckError, match="of shape"):
        deploy.compare_answers({"outputs": np.zeros((2, 2))}, expected, 1e-5)


@pytest.mark.parametrize("quantize", [None, "float16", "int8"])
@pytest.mark.parametrize("streaming", [False, True])
def test_litert_export_and_serve_check(quantize, streaming, tmp_path, capsys):
    pytest.importorskip("keras_seqcells.litert")
    pytest.importorskip("ai_edge_litert")
    keras.utils.set_random_seed(0)
    # The converter quantises weights of 1024 values or more only: a 40 x 32 kernel.
    # A Sequential model loaded from its file streams too (its layers were called twice).
    model = keras.Sequential([keras.Input((None, 40)), ks.LSTM(8), keras.layers.Dense(2)])
    lstm_model_path = _save(model, tmp_path)
    destination = str(tmp_path / "lstm.tflite")
    argv = ["export", lstm_model_path, destination, "--format", "litert"]
    argv += ["--quantize", quantize] if quantize else []
    argv += ["--streaming"] if streaming else ["--sequence-length", "5"]
    status, captured = _run(argv, capsys)
    assert status == 0, captured.err
    status, captured = _run(["serve-check", destination, "--model", lstm_model_path], capsys)
    assert status == 0, captured.err
    assert f"weights: {quantize or 'float32'};" in captured.out
    tolerance = deploy.TOLERANCES[quantize]
    assert f"(tolerance {tolerance:g})" in captured.out


def test_unnamed_outputs_are_matched_by_shape():
    expected = [np.array([[0.5]], "float32")]
    got = {"output_0": np.zeros((1, 4), "float32"), "output_1": np.array([[0.5]], "float32")}
    assert "'output_1'" in deploy.compare_answers(got, expected, 1e-5)[0]
    ambiguous = {"output_0": np.zeros((1, 1)), "output_1": np.zeros((1, 1))}
    with pytest.raises(deploy.DeployCheckError, match="one output of each shape"):
        deploy.compare_answers(ambiguous, expected, 1e-5)


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_a_tagger_with_spelling_features_exports_and_serve_checks(format, tmp_path, capsys):
    pytest.importorskip("onnxruntime" if format == "onnx" else "ai_edge_litert")
    from tests.test_text_export import _tagger

    model_path = _save(_tagger(tmp_path), tmp_path)
    destination = str(tmp_path / ("tagger.onnx" if format == "onnx" else "tagger.tflite"))
    status, captured = _run(["export", model_path, destination, "--format", format], capsys)
    assert status == 0, captured.err
    assert (tmp_path / "tagger.vocabulary.json").exists()
    assert (tmp_path / "tagger.preprocess.py").exists()
    status, captured = _run(["serve-check", destination, "--model", model_path], capsys)
    assert status == 0, captured.err
    assert "token_ids (" in captured.out and "suffix_ids (" in captured.out
    assert "output 'outputs'" in captured.out or "output 'tags'" in captured.out
    assert captured.out.rstrip().endswith("serve-check: OK")
