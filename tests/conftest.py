import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import pytest

from tests.cases import CASE_IDS, CASE_PARAMS


def backend_skip_reason(marks, backend):
    """The reason to skip a test with these marks on `backend`, or None to run it.

    `tensorflow_only(reason=...)` runs a test on TensorFlow only;
    `not_on_backend("jax", "torch", reason=...)` skips it on the named backends.
    Both demand a reason, so that every skip says why in the test report.
    """
    for mark in marks:
        if mark.name not in ("tensorflow_only", "not_on_backend"):
            continue
        reason = mark.kwargs.get("reason")
        if not isinstance(reason, str) or not reason:
            raise ValueError(
                f"Expected a non-empty reason=... on the {mark.name} mark. "
                f"Received: reason={reason!r}"
            )
        if mark.name == "tensorflow_only":
            if backend != "tensorflow":
                return f"{backend} backend: {reason}"
            continue
        if not mark.args or not all(isinstance(name, str) for name in mark.args):
            raise ValueError(
                "Expected backend names as positional arguments of not_on_backend. "
                f"Received: backends={mark.args!r}"
            )
        if backend in mark.args:
            return f"{backend} backend: {reason}"
    return None


def pytest_collection_modifyitems(config, items):
    backend = keras.backend.backend()
    for item in items:
        reason = backend_skip_reason(item.iter_markers(), backend)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(params=CASE_PARAMS, ids=CASE_IDS)
def case(request):
    return request.param


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Every test starts from the default float32 policy and a clean session."""
    keras.config.set_dtype_policy("float32")
    keras.utils.clear_session(free_memory=False)
    yield
    keras.config.set_dtype_policy("float32")


# Hypothesis profiles: a quick one by default, "ci" (HYPOTHESIS_PROFILE=ci, or
# CI set) runs 1,200 examples of the property tests in a few minutes.
from hypothesis import HealthCheck, settings  # noqa: E402

_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile(
    "default", max_examples=50, deadline=None, suppress_health_check=_SUPPRESSED
)
settings.register_profile(
    "ci", max_examples=400, deadline=None, suppress_health_check=_SUPPRESSED, print_blob=True
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default")
)
