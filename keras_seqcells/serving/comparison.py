"""Comparisons of a served answer with the answer it should be, as serve_check reports them."""

import numpy as np


class ServeCheckError(Exception):
    """An export fails a serving check."""


def decoded(array):
    """`array` as an object array of `str` (bytes decoded as UTF-8)."""
    array = np.asarray(array, dtype=object)
    return np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else v, otypes=[object])(array)


def compare(what, got, expected, rtol=1e-5, atol=1e-6):
    """Raises ServeCheckError unless `got` is `expected` (numbers within float32 rounding)."""
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        raise ServeCheckError(
            f"Expected {what} of shape {expected.shape}. Received: shape {got.shape}"
        )
    if got.dtype.kind in "OSU" or expected.dtype.kind in "OSU":
        got, expected = decoded(got), decoded(expected)
        equal = got.size == 0 or bool(np.all(got == expected))
        if not equal:
            raise ServeCheckError(f"Expected {what} {expected.tolist()}. Received: {got.tolist()}")
        return
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        worst = float(np.max(np.abs(got.astype("float64") - expected.astype("float64"))))
        raise ServeCheckError(
            f"Expected {what} equal within float32 rounding. Largest difference: {worst:g}"
        )


def compare_outputs(what, got, expected, names=None):
    """`compare` on each output of `expected` (or of `names`)."""
    for name in names or sorted(expected):
        compare(f"{what} output {name!r}", got[name], expected[name])
