"""Keras's own RNN test files, run against keras_seqcells (see tests/keras_own_tests.py)."""

import pytest

from tests.keras_own_tests import (
    KERAS_TEST_FILES,
    keras_test_methods,
    load_keras_test_module,
    pytest_marks,
    run_keras_test,
)

MODULES = {name: load_keras_test_module(name) for name in KERAS_TEST_FILES}

_GRU_CANDIDATE_BIAS = (
    "Keras's expected outputs come from keras.layers.GRU(reset_after=True) with "
    "bias_initializer=Constant(c), c != 0, which fills the recurrent bias of the "
    "candidate (bias[1, 2*units:]) too; the specification's reset-after candidate "
    "tanh(W_xh x + r * (W_hh h) + b_h) has no bias inside the reset, so no weights of "
    "keras_seqcells.GRU compute that layer and from_keras refuses it (ValueError)"
)

# Keras tests that cannot hold for keras_seqcells: (reason, the exception they raise).
EXPECTED_FAILURES = {
    **{
        f"gru_test.py::GRUTest::{method}": (_GRU_CANDIDATE_BIAS, ValueError)
        for method in (
            "test_correctness0",
            "test_correctness1",
            "test_legacy_implementation_argument",
            "test_masking",
            "test_pass_initial_state",
            "test_pass_return_state",
            "test_statefulness",
        )
    },
    "bidirectional_test.py::SimpleRNNTest::test_correctness": (
        "its SimpleRNN cases pass; its last case wraps a GRU: " + _GRU_CANDIDATE_BIAS,
        ValueError,
    ),
    "bidirectional_test.py::SimpleRNNTest::test_masking": (
        "it wraps a GRU: " + _GRU_CANDIDATE_BIAS,
        ValueError,
    ),
    "bidirectional_test.py::SimpleRNNTest::test_fused_gru_eligibility": (
        "keras_seqcells.GRU is deliberately not a keras.layers.GRU: Bidirectional's fused "
        "cuDNN GRU call (backend.bidirectional_gru) would read its kernel and bias in Keras's "
        "update-gate convention, where z weights the old state, and compute another function; "
        "_can_attempt_fused_gru is therefore False",
        AssertionError,
    ),
}

# Keras tests above ~20 s on 2 CPU cores.
SLOW = set()


def _params():
    params = []
    for file_name, module in MODULES.items():
        for class_name, method_name in keras_test_methods(module):
            test_id = f"{file_name}::{class_name}::{method_name}"
            method = getattr(getattr(module, class_name), method_name)
            marks = pytest_marks(method)
            if test_id in EXPECTED_FAILURES:
                reason, raises = EXPECTED_FAILURES[test_id]
                marks.append(pytest.mark.xfail(strict=True, reason=reason, raises=raises))
            if test_id in SLOW:
                marks.append(pytest.mark.slow)
            params.append(pytest.param(file_name, class_name, method_name, id=test_id, marks=marks))
    return params


@pytest.mark.parametrize(("file_name", "class_name", "method_name"), _params())
def test_keras_own(file_name, class_name, method_name):
    run_keras_test(MODULES[file_name], class_name, method_name)
