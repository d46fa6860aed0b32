"""Tasks trained under a dtype policy: half-precision recurrent layers, float32
outputs, the global policy restored, the policy kept on resume and in exports."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seqcells import cli
from keras_seqcells.deploy import export_file
from keras_seqcells.serving import export, serve_check
from keras_seqcells.tasks import (
    DTYPE_POLICIES,
    Forecasting,
    NextWord,
    Tagging,
    TextClassification,
)
from keras_seqcells.tasks.base import dtype_policy_scope
from keras_seqcells.tasks.checkpoints import CheckpointError
from tests.task_helpers import Interrupt, InterruptAfterFirstEpoch, tiny_settings

TEXT_TASK = {"max_tokens": 300, "sequence_length": 12, "embedding_dim": 8}
TAGGING_TASK = {"max_length": 8, "embedding_dim": 8, "feature_bins": 50, "feature_dim": 4}
FORECAST_TASK = {"window": 8, "horizon": 3, "min_epoch_windows": 1}
NEXT_WORD_TASK = {"sequence_length": 8, "embedding_dim": 8}


def _dtype(x):
    return keras.backend.standardize_dtype(x.dtype)


def _policies(model):
    return {layer.name: layer.dtype_policy.name for layer in model.layers}


@pytest.mark.parametrize(
    "value, error",
    [("bfloat16", ValueError), ("MIXED_BFLOAT16", ValueError), (16, ValueError)],
)
def test_settings_refuse_an_unknown_policy_naming_the_argument(value, error, tmp_path):
    with pytest.raises(error, match=r"Expected `dtype_policy` to be one of \{'float32', "):
        tiny_settings(tmp_path, dtype_policy=value)
    with pytest.raises(error, match=f"Received: dtype_policy={value!r}"):
        tiny_settings(tmp_path, dtype_policy=value)
    for policy in (*DTYPE_POLICIES, None):
        assert tiny_settings(tmp_path, dtype_policy=policy).dtype_policy == policy


def test_policy_scope_restores_the_global_policy_even_on_error():
    keras.config.set_dtype_policy("mixed_float16")
    with pytest.raises(RuntimeError, match="inside"), dtype_policy_scope("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        raise RuntimeError("inside")
    assert keras.config.dtype_policy().name == "mixed_float16"
    with dtype_policy_scope(None):
        assert keras.config.dtype_policy().name == "mixed_float16"


def test_text_classifier_trains_in_bfloat16_with_float32_outputs(tmp_path):
    task = TextClassification(**TEXT_TASK)
    result = task.train(tiny_settings(tmp_path, dtype_policy="mixed_bfloat16"), limit=64)
    assert keras.config.dtype_policy().name == "float32"
    encoder = result.model.get_layer("encoder")
    assert encoder.forward_layer.compute_dtype == "bfloat16"
    assert {_dtype(w) for w in result.model.weights} == {"float32"}
    assert _policies(result.model)["probability"] == "float32"
    assert _dtype(result.model.output) == "float32"
    probabilities = result.model(keras.ops.convert_to_tensor(["a witty film", "dull"]))
    assert _dtype(probabilities) == "float32"
    assert 0.0 <= result.metrics["accuracy"] <= 1.0
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["settings"]["dtype_policy"] == "mixed_bfloat16"

    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert reloaded.get_layer("encoder").forward_layer.compute_dtype == "bfloat16"
    texts = ["a witty film", "dull and long"]
    np.testing.assert_allclose(
        np.asarray([p for _, row in task.predict(reloaded, texts) for p in row.values()]),
        np.asarray([p for _, row in task.predict(result.model, texts) for p in row.values()]),
        atol=1e-6,
    )


def test_float32_is_the_default_and_leaves_the_head_unchanged(tmp_path):
    result = TextClassification(**TEXT_TASK).train(tiny_settings(tmp_path), limit=64)
    assert set(_policies(result.model).values()) == {"float32"}
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["settings"]["dtype_policy"] == "float32"


def test_training_error_restores_the_global_policy(tmp_path):
    settings = tiny_settings(tmp_path, dtype_policy="mixed_bfloat16")
    with pytest.raises(Interrupt):
        TextClassification(**TEXT_TASK).train(
            settings, limit=64, callbacks=[InterruptAfterFirstEpoch()]
        )
    assert keras.config.dtype_policy().name == "float32"


def test_resumed_training_keeps_the_policy_and_refuses_another(tmp_path):
    task = TextClassification(**TEXT_TASK)
    settings = tiny_settings(tmp_path, epochs=2, patience=5, dtype_policy="mixed_bfloat16")
    with pytest.raises(Interrupt):
        task.train(settings, limit=64, callbacks=[InterruptAfterFirstEpoch()])
    state = json.loads((tmp_path / "backup" / "state.json").read_text())
    assert state["dtype_policy"] == "mixed_bfloat16"
    explicit = tiny_settings(tmp_path, epochs=2, patience=5, dtype_policy="float32")
    with pytest.raises(CheckpointError, match="Received: dtype_policy='float32'"):
        task.train(explicit, limit=64)
    assert keras.config.dtype_policy().name == "float32"

    result = task.train(tiny_settings(tmp_path, epochs=2, patience=5), limit=64)
    assert len(result.history["loss"]) == 2
    assert result.model.get_layer("encoder").forward_layer.compute_dtype == "bfloat16"
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["settings"]["dtype_policy"] == "mixed_bfloat16"


def test_forecaster_computes_only_its_recurrent_layer_in_bfloat16(tmp_path):
    task = Forecasting(**FORECAST_TASK)
    result = task.train(tiny_settings(tmp_path, dtype_policy="mixed_bfloat16"), limit=32)
    policies = _policies(result.model)
    assert policies.pop("encoder") == "mixed_bfloat16"
    # The normalisation, the baseline and the correction stay float32: the
    # series' values are not rounded to bfloat16's 8 significant bits.
    assert set(policies.values()) == {"float32"}
    assert _dtype(result.model.output) == "float32"
    assert np.isfinite(result.metrics["mae"])
    forecasts = task.predict(result.model, ["12.5, 13.0, 11.2, 10.9, 14.1, 15.0, 13.3, 12.8"])
    assert all(isinstance(value, float) for value in forecasts[0])


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_tagger_and_next_word_model_train_under_mixed_policies(policy, tmp_path):
    tagged = Tagging(**TAGGING_TASK).train(
        tiny_settings(tmp_path / "tagging", dtype_policy=policy), limit=16
    )
    assert _policies(tagged.model)["tags"] == "float32"
    assert _dtype(tagged.model.output) == "float32"
    assert 0.0 <= tagged.metrics["accuracy"] <= 1.0
    words = NextWord(**NEXT_WORD_TASK).train(
        tiny_settings(tmp_path / "next_word", dtype_policy=policy), limit=400
    )
    assert _policies(words.model)["logits"] == "float32"
    assert _dtype(words.model.output) == "float32"
    assert np.isfinite(words.metrics["perplexity"])
    assert keras.config.dtype_policy().name == "float32"


def test_cli_trains_under_the_dtype_policy(tmp_path, capsys):
    output_dir = tmp_path / "run"
    arguments = ["train", "text-classification", "--units", "4", "--epochs", "1", "--quiet"]
    arguments += ["--limit", "64", "--output-dir", str(output_dir)]
    assert cli.main([*arguments, "--dtype-policy", "mixed_bfloat16"]) == 0
    summary = json.loads((output_dir / "metrics.json").read_text())
    assert summary["settings"]["dtype_policy"] == "mixed_bfloat16"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*arguments, "--dtype-policy", "bfloat16"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'bfloat16'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def bfloat16_models(tmp_path_factory):
    """`(name, model, LiteRT sequence length)` of a text classifier and a forecaster
    trained under `mixed_bfloat16`."""
    folder = tmp_path_factory.mktemp("bfloat16_models")
    text = TextClassification(**TEXT_TASK).train(
        tiny_settings(folder / "text", dtype_policy="mixed_bfloat16"), limit=64
    )
    forecaster = Forecasting(**FORECAST_TASK).train(
        tiny_settings(folder / "forecast", dtype_policy="mixed_bfloat16"), limit=32
    )
    return [("text", text.model, None), ("forecast", forecaster.model, 8)]


def test_bfloat16_models_refuse_onnx(bfloat16_models, tmp_path):
    pytest.importorskip("onnx")
    for name, model, _ in bfloat16_models:
        with pytest.raises(ValueError, match="its dtype policy is 'mixed_bfloat16'"):
            export_file(model, tmp_path / f"{name}.onnx", "onnx")


def test_bfloat16_models_export_as_saved_models_and_refuse_litert(bfloat16_models, tmp_path):
    for name, model, length in bfloat16_models:
        path = export(model, tmp_path / "saved_models" / name, xla=name == "forecast")
        report = serve_check(path, model=model, fresh_process=False)
        assert any(line.startswith("half-precision graph") for line in report)
        assert report[-1] == "serving_default: the Keras model's answers"
        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
        assert {output.dtype for output in signature.structured_outputs.values()} <= {
            tf.float32,
            tf.string,
        }
        with pytest.raises(ValueError, match="with dtype policy 'mixed_bfloat16'"):
            export_file(model, tmp_path / f"{name}.tflite", "litert", sequence_length=length)
    # A float32 model's answers are still held to float32 rounding.
    float32_model = TextClassification(**TEXT_TASK).train(tiny_settings(tmp_path / "f32"), limit=64)
    path = export(float32_model.model, tmp_path / "saved_models" / "f32", xla=False)
    report = serve_check(path, model=float32_model.model, fresh_process=False)
    assert not any(line.startswith("half-precision graph") for line in report)
