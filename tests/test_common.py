"""The shared layer checks of `layer_test_helper.py`, run over every cell of `cases.py`."""

import numpy as np
import pytest

from tests import layer_test_helper as helper
from tests.cases import CASES


def test_build(case):
    helper.check_build(case)


def test_call(case):
    helper.check_call(case)


def test_masking(case):
    helper.check_masking(case)


def test_config_round_trip(case):
    helper.check_config_round_trip(case)


@pytest.mark.not_on_backend(
    "torch",
    reason="Keras's SavedModel export of a torch model fails in torch.export, even for Dense",
)
def test_saved_model_export(case, tmp_path):
    helper.check_saved_model_export(case, tmp_path / "export")


@pytest.mark.tensorflow_only(reason="gradient_flow differentiates with tf.GradientTape")
def test_trace_and_gradient_flow(case):
    helper.check_trace_and_gradient_flow(case)


@pytest.mark.tensorflow_only(reason="the serving export, with its step signature, is TensorFlow's")
def test_step_export_equals_the_whole_sequence(case, tmp_path):
    helper.check_step_export(case, tmp_path / "export")


@pytest.fixture(scope="module")
def fresh_process_round_trip(request, tmp_path_factory):
    # One fresh process loads the models of every selected case (the variant
    # cases only when the slow tests run).
    selected = {
        item.callspec.params["case"].id
        for item in request.session.items
        if item.originalname == "test_keras_file_loads_in_fresh_process"
    }
    directory = tmp_path_factory.mktemp("keras_files")
    cases = [case for case in CASES if case.id in selected]
    expected = helper.save_models_for_fresh_process(cases, directory)
    return expected, helper.predictions_in_fresh_process(directory)


def test_keras_file_loads_in_fresh_process(case, fresh_process_round_trip):
    expected, reloaded = fresh_process_round_trip
    for name in (f"{case.id}-layer", f"{case.id}-cell"):
        np.testing.assert_array_equal(reloaded[name], expected[name])
