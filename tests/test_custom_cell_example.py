"""The user-defined cell of `examples/custom_cell.py` passes the shared layer checks."""

import importlib.util
import pathlib

import keras
import numpy as np
import pytest

import keras_seqcells as ks
from tests import layer_test_helper as helper
from tests.cases import CellCase

_PATH = pathlib.Path(__file__).parents[1] / "examples" / "custom_cell.py"
_SPEC = importlib.util.spec_from_file_location("custom_cell_example", _PATH)
example = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(example)


@keras.saving.register_keras_serializable(package="examples")
class IndRNN(ks.layers.CellLayer):
    """The layer of the example's `IndRNNCell`."""

    cell_class = example.IndRNNCell


CASE = CellCase("indrnn", example.IndRNNCell, IndRNN)


def _reference(x, kernel, u, bias):
    """`h_t = relu(W x_t + u ⊙ h_{t-1} + b)` in float64 NumPy."""
    h = np.zeros((x.shape[0], u.shape[0]))
    outputs = []
    for t in range(x.shape[1]):
        h = np.maximum(x[:, t] @ kernel + u * h + bias, 0.0)
        outputs.append(h)
    return np.stack(outputs, axis=1)


@pytest.mark.parametrize(
    "check",
    [
        helper.check_build,
        helper.check_call,
        helper.check_masking,
        helper.check_config_round_trip,
    ],
    ids=lambda check: check.__name__,
)
def test_example_cell_passes_the_shared_checks(check):
    check(CASE)


@pytest.mark.tensorflow_only(reason="trace/gradient_flow and the serving export use TensorFlow")
def test_example_cell_traces_and_exports(tmp_path):
    helper.check_trace_and_gradient_flow(CASE)
    helper.check_step_export(CASE, tmp_path / "step")
    helper.check_saved_model_export(CASE, tmp_path / "keras_export")


@pytest.mark.not_on_backend(
    "jax", "torch", reason="Keras computes some float64 ops in float32 on this backend"
)
def test_example_cell_computes_its_equations_exactly():
    layer = IndRNN(4, return_sequences=True, dtype="float64")
    x = np.random.default_rng(0).normal(size=(3, 6, 2))
    layer(x)
    rng = np.random.default_rng(1)
    kernel, u, bias = (
        rng.normal(size=w.shape) for w in (layer.cell.kernel, layer.cell.u, layer.cell.bias)
    )
    layer.cell.set_named_weights({"W_xh": kernel.T, "u": u, "b_h": bias})
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), _reference(x, kernel, u, bias), rtol=1e-10, atol=1e-12
    )


def test_example_trains():
    model = example.main(epochs=1)
    assert isinstance(model.layers[0], ks.RNN)
