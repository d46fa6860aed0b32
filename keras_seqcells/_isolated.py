"""Running a check in a fresh Python process that cannot import keras_seqcells."""

import os
import subprocess
import sys

#: Seconds a check in another process may take (a runtime's import is most of it).
PROCESS_TIMEOUT = 300


def run_isolated(script, arguments, folder, what, error):
    """Runs `script` with `python -I` in `folder`, without `PYTHONPATH`; returns its stdout.

    Args:
        script: The Python source to run.
        arguments: Its command-line arguments.
        folder: The working directory.
        what: What runs, for the messages ("saved_model_cli run", ...).
        error: The exception class raised on a timeout or a failure.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("PYTHONPATH", None)
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", script, *arguments],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise error(
            f"Expected {what} to finish within {PROCESS_TIMEOUT} s. Received: a timeout"
        ) from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise error(
            f"Expected {what} to succeed. Received: exit status {done.returncode} "
            f"({lines[-1] if lines else 'no message'})"
        )
    return done.stdout
