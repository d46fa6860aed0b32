"""Files written so that nothing is lost: whole or not at all, never half-written."""

import contextlib
import json
import os
import pathlib
import tempfile


@contextlib.contextmanager
def atomic_write(path, suffix=None):
    """Yields a temporary path beside `path`, renamed to `path` only on success.

    The temporary file is flushed to disk before the rename. A failure leaves
    `path` as it was and no stray file; an interruption (even SIGKILL) leaves
    `path` as it was and at most a hidden `.name-*` file beside it.

    Args:
        path: The file to write.
        suffix: The temporary file's suffix (`path`'s by default), for
            writers that insist on one, such as `.weights.h5`.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.stem}-", suffix=suffix or path.suffix, dir=path.parent
    )
    os.close(handle)
    temporary = pathlib.Path(temporary)
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def save_atomically(model, path):
    """Saves `model` to a `.keras` file without ever leaving a half-written one."""
    with atomic_write(path) as temporary:
        model.save(temporary)


def write_json_atomically(obj, path):
    with atomic_write(path) as temporary:
        temporary.write_text(json.dumps(obj, indent=2, default=float) + "\n")


def save_figure(figure, path, dpi=100):
    """Writes a matplotlib figure to `path` atomically and closes it, even when the write fails."""
    import matplotlib.pyplot as plt

    try:
        with atomic_write(path) as temporary:
            figure.savefig(temporary, dpi=dpi)
    finally:
        plt.close(figure)


def plot_learning_curve(history, path, title):
    """Plots each metric of a Keras history (training and validation) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in history if not name.startswith("val_")]
    figure, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        epochs = range(1, len(history[name]) + 1)
        axis.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)
