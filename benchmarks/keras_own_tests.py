"""Runs Keras's own RNN tests against keras_seqcells and writes their outcome.

`tests/test_keras_own_tests.py` runs the test files of the installed Keras
wheel (`keras/src/layers/rnn/*_test.py`) with our layers and cells in place of
Keras's. This script runs it under pytest with a JUnit XML report and writes,
per Keras test file, how many tests passed, which fail by design (the strict
expected failures listed in the test module, with their reasons) and which
were skipped, to `benchmarks/results/keras-own-tests.md` and the README block
of that name.

    python -m benchmarks.keras_own_tests
"""

import argparse
import collections
import os
import pathlib
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree

import keras

from benchmarks.readme_blocks import ROOT, write_block

BLOCK = "keras-own-tests"
TEST_FILE = "tests/test_keras_own_tests.py"


def run_pytest(report_path):
    """Runs the Keras-own tests (slow ones included) with a JUnit XML report."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "slow or not slow",
        f"--junitxml={report_path}",
        TEST_FILE,
    ]
    completed = subprocess.run(command, cwd=ROOT, env=env, check=False)
    # 0: all passed; 1: some failed, which the table must then show.
    if completed.returncode not in (0, 1):
        raise RuntimeError(
            f"Expected pytest to run {TEST_FILE}. Received: exit status {completed.returncode}"
        )


def outcomes(report_path):
    """`[(keras_file, test, outcome, reason)]` from a JUnit XML report.

    `outcome` is "passed", "xfail", "skipped" or "failed".
    """
    rows = []
    for case in ElementTree.parse(report_path).getroot().iter("testcase"):
        name = case.get("name")
        test_id = name[name.index("[") + 1 : -1]
        keras_file, _, test = test_id.partition("::")
        outcome, reason = "passed", ""
        for child in case:
            if child.tag == "skipped":
                xfail = child.get("type") == "pytest.xfail"
                outcome = "xfail" if xfail else "skipped"
                reason = child.get("message", "")
            elif child.tag in ("failure", "error"):
                outcome, reason = "failed", child.get("message", "")
        rows.append((keras_file, test, outcome, reason))
    return rows


def _reason(text):
    for prefix in ("reason: ", "Skipped: "):
        text = text.removeprefix(prefix)
    return text.replace("|", "\\|").strip()


def table(rows):
    """The README block: counts per Keras test file, then every exception with its reason."""
    counts = collections.defaultdict(collections.Counter)
    for keras_file, _, outcome, _ in rows:
        counts[keras_file][outcome] += 1
    lines = [
        f"Keras {keras.__version__}, {keras.backend.backend()} backend, CPU: "
        f"{len(rows)} tests of Keras's own files.",
        "",
        "| Keras test file | tests | passed | expected failures | skipped | failed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for keras_file, count in counts.items():
        lines.append(
            f"| `{keras_file}` | {sum(count.values())} | {count['passed']} | {count['xfail']} "
            f"| {count['skipped']} | {count['failed']} |"
        )
    # One line per reason, naming the tests it covers.
    exceptions = collections.defaultdict(list)
    for keras_file, test, outcome, reason in rows:
        if outcome != "passed":
            exceptions[(keras_file, outcome, _reason(reason))].append(f"`{test.split('::')[-1]}`")
    if exceptions:
        lines += ["", "Not passing, and why:", ""]
        for (keras_file, outcome, reason), tests in exceptions.items():
            label = {"xfail": "expected failure"}.get(outcome, outcome)
            lines.append(f"- `{keras_file}`, {label}: {', '.join(tests)}. {reason}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        report = pathlib.Path(directory) / "report.xml"
        run_pytest(report)
        text = table(outcomes(report))
    write_block(BLOCK, text)
    print(text)


if __name__ == "__main__":
    main()
