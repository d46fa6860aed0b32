"""Forecasting task models in ONNX and LiteRT: the files run in a fresh process and match Keras."""

import numpy as np
import pytest

from keras_seqcells import deploy
from keras_seqcells.tasks import TrainSettings
from keras_seqcells.tasks.forecasting import Forecasting

pytestmark = pytest.mark.tensorflow_only(
    reason="the LiteRT converter traces TensorFlow functions of the model"
)

# One model per kind of reference layers: the last value repeated over the
# horizon (Cropping1D, UpSampling1D, Reshape, Add), the value a season ago
# (Cropping1D), and the many-to-many forecasts after every step
# (TimeDistributed, Concatenate, Flatten).
CASES = {
    "last": ({"window": 8, "horizon": 3, "min_epoch_windows": 1}, None),
    "season": (
        {"window": 8, "horizon": 3, "reference": "season"},
        "airline-passengers",
    ),
    "many_to_many": (
        {"window": 12, "horizon": 3, "mode": "many_to_many", "reference": "season"},
        "airline-passengers",
    ),
}


def _model(case, cell):
    arguments, source = CASES[case]
    task = Forecasting(**arguments)
    data = task.load_data(source, limit=32) if source is None else task.load_data(source)
    model = task.build_model(data, TrainSettings(units=3, cell=cell, output_dir="unused"))
    rng = np.random.default_rng(0)
    for variable in model.weights:
        variable.assign(rng.normal(0.0, 0.5, variable.shape).astype("float32"))
    return model


@pytest.mark.parametrize("format", ["onnx", "litert"])
@pytest.mark.parametrize(("case", "cell"), [("last", "lstm"), ("season", "min_gru")])
def test_forecasting_models_run_in_their_runtime_and_match_keras(case, cell, format, tmp_path):
    pytest.importorskip("onnxruntime" if format == "onnx" else "ai_edge_litert")
    model = _model(case, cell)
    path = deploy.export_file(model, tmp_path / f"forecaster{deploy.SUFFIXES[format]}", format)
    lines = deploy.check_deployed(path, model=model)
    assert len([line for line in lines if "largest difference" in line]) == 2  # both outputs


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_many_to_many_forecasting_model(format, tmp_path):
    pytest.importorskip("onnxruntime" if format == "onnx" else "ai_edge_litert")
    model = _model("many_to_many", "layer_norm_gru")
    path = deploy.export_file(model, tmp_path / f"steps{deploy.SUFFIXES[format]}", format)
    lines = deploy.check_deployed(path, model=model)
    assert len([line for line in lines if "largest difference" in line]) == 2


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_forecasting_model_with_feature_columns(format, tmp_path):
    pytest.importorskip("onnxruntime" if format == "onnx" else "ai_edge_litert")
    from tests.test_forecasting import weather_csv

    path = weather_csv(tmp_path)
    task = Forecasting(
        target="temp", features="wind,weather", window=8, horizon=3, min_epoch_windows=1
    )
    data = task.load_data(str(path))
    model = task.inference_model(
        task.build_model(data, TrainSettings(units=3, cell="peephole_lstm", output_dir="x"))
    )
    rng = np.random.default_rng(0)
    for variable in model.weights:
        variable.assign(rng.normal(0.0, 0.5, variable.shape).astype("float32"))
    assert model.inputs[0].shape[2] == 5  # temp, wind and the three one-hot weather columns
    exported = deploy.export_file(model, tmp_path / f"weather{deploy.SUFFIXES[format]}", format)
    lines = deploy.check_deployed(exported, model=model)
    assert any("largest difference" in line for line in lines)
