"""The backend markers of `conftest.py` and the report of `benchmarks/backends.py`."""

import pytest

from benchmarks import backends
from tests.conftest import backend_skip_reason

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="7">
  <testcase classname="tests.test_reference" name="test_a" time="1.5"/>
  <testcase classname="tests.test_reference" name="test_b" time="0.5">
    <skipped type="pytest.skip" message="jax backend: float64 is float32 here"/>
  </testcase>
  <testcase classname="tests.test_fast_paths" name="test_c" time="0.25">
    <skipped type="pytest.skip" message="Skipped: jax backend: float64 is float32 here"/>
  </testcase>
  <testcase classname="tests.test_common.TestGroup" name="test_d" time="2.0">
    <failure message="assert 1 == 2"/>
  </testcase>
  <testcase classname="tests.test_convert" name="test_e" time="0.75">
    <error message="fixture failed"/>
  </testcase>
  <testcase classname="tests.test_rnn_features" name="test_f" time="0.5">
    <skipped type="pytest.skip" message="tf.function only"/>
  </testcase>
  <testcase classname="tests.test_export" name="test_not_core" time="9.0">
    <failure message="not counted"/>
  </testcase>
</testsuite></testsuites>
"""


@pytest.fixture
def junit_file(tmp_path):
    path = tmp_path / "jax.xml"
    path.write_text(JUNIT)
    return path


def test_summary_counts_only_the_core_files(junit_file):
    summary = backends.summarize(junit_file)
    assert (summary["passed"], summary["skipped"], summary["failed"]) == (1, 3, 2)
    assert summary["seconds"] == pytest.approx(5.5)
    assert summary["skip_reasons"] == {
        "jax backend: float64 is float32 here": 2,
        "tf.function only": 1,
    }


def test_a_test_in_several_files_counts_once_with_its_last_result(junit_file, tmp_path):
    rerun = tmp_path / "jax-rerun.xml"
    rerun.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_common.TestGroup" name="test_d" time="1.0"/>'
        "</testsuite></testsuites>"
    )
    summary = backends.summarize([junit_file, rerun])
    assert (summary["passed"], summary["skipped"], summary["failed"]) == (2, 3, 1)
    assert summary["seconds"] == pytest.approx(4.5)


def test_markdown_lists_counts_and_reasons(junit_file):
    text = backends.markdown({"jax": backends.summarize(junit_file)})
    assert "| jax | 1 | 3 | 2 | 6 |" in text
    assert "- 2 × jax backend: float64 is float32 here" in text
    assert "- 1 × tf.function only" in text


def test_main_reads_junit_files_and_fails_on_failed_tests(junit_file, capsys):
    with pytest.raises(SystemExit) as raised:
        backends.main(["--backends", "jax", "--junit-dir", str(junit_file.parent)])
    assert raised.value.code == 1
    assert "| jax | 1 | 3 | 2 |" in capsys.readouterr().out


def test_main_demands_a_file_per_backend(tmp_path):
    with pytest.raises(ValueError, match="Expected JUnit XML files torch"):
        backends.main(["--backends", "torch", "--junit-dir", str(tmp_path)])


def test_main_rejects_unknown_backends():
    with pytest.raises(ValueError, match="Received: backends=\\['mxnet'\\]"):
        backends.main(["--backends", "jax,mxnet", "--junit-dir", "."])


def test_ci_runs_the_same_core_files():
    script = (backends.ROOT / ".ci" / "run").read_text()
    for path in backends.CORE_TESTS:
        assert path in script


# ------------------------------------------------------------------ markers
def marks(*specs):
    return [getattr(pytest.mark, name)(*args, **kwargs).mark for name, args, kwargs in specs]


def test_tensorflow_only_skips_other_backends_with_the_reason():
    only_tf = marks(("tensorflow_only", (), {"reason": "tf.function only"}))
    assert backend_skip_reason(only_tf, "tensorflow") is None
    assert backend_skip_reason(only_tf, "torch") == "torch backend: tf.function only"


def test_not_on_backend_skips_the_named_backends_only():
    not_torch = marks(("not_on_backend", ("torch",), {"reason": "export fails"}))
    assert backend_skip_reason(not_torch, "torch") == "torch backend: export fails"
    assert backend_skip_reason(not_torch, "jax") is None
    assert backend_skip_reason(marks(("slow", (), {})), "torch") is None


@pytest.mark.parametrize(
    "spec, message",
    [
        (("tensorflow_only", (), {}), "Received: reason=None"),
        (("not_on_backend", ("jax",), {"reason": ""}), "Received: reason=''"),
        (("not_on_backend", (), {"reason": "why"}), "Received: backends=()"),
    ],
)
def test_markers_demand_a_reason_and_backends(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", "\\(").replace(")", "\\)")):
        backend_skip_reason(marks(spec), "jax")
