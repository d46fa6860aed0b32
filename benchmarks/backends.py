"""Which core tests pass on each Keras backend, from the test runs themselves.

Runs the core test files (reference equations, Keras parity, conversion,
layer features, fast paths, mixed precision, the shared layer checks) once per
backend with `KERAS_BACKEND` set, each in its own pytest process writing JUnit
XML, or reads the XML files a CI run already wrote (`--junit-dir`: the files
`<backend>*.xml`, so a leg may be split across processes; a file may hold more
tests than the core files, such as the whole TensorFlow suite, and only the
core files are counted; a test in several files counts once, as in the last).
It reports, per backend, the tests passed, skipped (with the reasons) and
failed, and the time spent in them, and with `--update-readme` writes the
README's `backends` block.

Usage:

    python -m benchmarks.backends                         # run the three legs
    python -m benchmarks.backends --junit-dir DIR         # read CI's XML files
    python -m benchmarks.backends --update-readme
"""

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from benchmarks.readme_blocks import write_block

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("tensorflow", "jax", "torch")
#: The test files every backend runs (`.ci/run` runs the same list).
CORE_TESTS = (
    "tests/test_reference.py",
    "tests/test_keras_parity.py",
    "tests/test_convert.py",
    "tests/test_rnn_features.py",
    "tests/test_fast_paths.py",
    "tests/test_mixed_precision.py",
    "tests/test_common.py",
)


def core_module(path):
    """`tests/test_reference.py` -> `tests.test_reference`, the JUnit classname prefix."""
    return path.removesuffix(".py").replace("/", ".")


def summarize(junit_paths, tests=CORE_TESTS):
    """Counts of the test cases of `tests` in JUnit XML files.

    `junit_paths` is one path or a list; a test case that several files hold
    counts once, with its result in the last of them.

    Returns a dict with `passed`, `skipped`, `failed` (failures and errors),
    `seconds` (the sum of the test cases' times) and `skip_reasons` (a
    `collections.Counter` of the skip messages).
    """
    if isinstance(junit_paths, (str, os.PathLike)):
        junit_paths = [junit_paths]
    modules = tuple(core_module(path) for path in tests)
    cases = {}
    for junit_path in junit_paths:
        for case in ET.parse(junit_path).getroot().iter("testcase"):
            classname = case.get("classname", "")
            if any(classname == m or classname.startswith(m + ".") for m in modules):
                cases[classname, case.get("name")] = case
    summary = {"passed": 0, "skipped": 0, "failed": 0, "seconds": 0.0}
    reasons = collections.Counter()
    for case in cases.values():
        summary["seconds"] += float(case.get("time") or 0.0)
        skipped = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            summary["failed"] += 1
        elif skipped is not None:
            summary["skipped"] += 1
            reasons[_skip_reason(skipped)] += 1
        else:
            summary["passed"] += 1
    summary["skip_reasons"] = reasons
    return summary


def _skip_reason(skipped):
    message = (skipped.get("message") or skipped.text or "").strip()
    # pytest prefixes the reason of a skip raised in a test with "Skipped: ".
    return message.removeprefix("Skipped: ")


def run_leg(backend, junit_path, tests=CORE_TESTS):
    """Runs `tests` with `KERAS_BACKEND=backend`; returns the wall-clock seconds."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += [f"--junitxml={junit_path}", *tests]
    start = time.perf_counter()
    # A failing test is a result to report, not an error of this script.
    subprocess.run(command, cwd=ROOT, env=env, check=False)
    return time.perf_counter() - start


def markdown(summaries):
    """The `backends` block: a table of counts, then each backend's skip reasons."""
    lines = [
        "Core test files (" + ", ".join(f"`{Path(t).name}`" for t in CORE_TESTS) + ") "
        "per Keras backend, counted from the JUnit XML of the test runs; time = the sum "
        "of the tests' own times on a 2-core machine shared with other jobs.",
        "",
        "| backend | passed | skipped | failed | time s |",
        "|---|---:|---:|---:|---:|",
    ]
    for backend, summary in summaries.items():
        lines.append(
            f"| {backend} | {summary['passed']} | {summary['skipped']} | "
            f"{summary['failed']} | {summary['seconds']:.0f} |"
        )
    for backend, summary in summaries.items():
        if not summary["skip_reasons"]:
            continue
        lines += ["", f"Skipped on {backend}:", ""]
        for reason, count in sorted(summary["skip_reasons"].items()):
            lines.append(f"- {count} × {reason}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    parser.add_argument("--junit-dir", help="read <backend>.xml files instead of running")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    backends = [name for name in args.backends.split(",") if name]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        raise ValueError(f"Expected backends among {BACKENDS}. Received: backends={unknown}")

    summaries = {}
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(args.junit_dir or scratch)
        for backend in backends:
            if not args.junit_dir:
                seconds = run_leg(backend, directory / f"{backend}.xml")
                print(f"{backend} leg took {seconds:.0f}s", flush=True)
            junit_paths = sorted(directory.glob(f"{backend}*.xml"))
            if not junit_paths:
                raise ValueError(
                    f"Expected JUnit XML files {backend}*.xml in the JUnit directory. "
                    f"Received: junit_dir={str(directory)!r}"
                )
            summaries[backend] = summarize(junit_paths)
    text = markdown(summaries)
    print(text)
    if args.update_readme:
        write_block("backends", text)
    if any(summary["failed"] for summary in summaries.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
