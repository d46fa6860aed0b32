import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import pytest

from tests.cases import CASE_IDS, CASES


@pytest.fixture(params=CASES, ids=CASE_IDS)
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
