"""Comparisons of a served answer with the answer it should be, as serve_check reports them."""

import contextlib
import contextvars

import numpy as np

#: `compare`'s tolerances (`rtol`, `atol`) by the precision the export computes in.
#: A model trained under a mixed precision policy computes in bfloat16 or
#: float16, whose 8 or 11 significant bits round differently when a server's
#: kernels order the sums otherwise than Keras's.
TOLERANCES = {"float32": (1e-5, 1e-6), "half precision": (1e-2, 1e-3)}
_PRECISION = contextvars.ContextVar("keras_seqcells_serve_check_precision", default="float32")


class ServeCheckError(Exception):
    """An export fails a serving check."""


def decoded(array):
    """`array` as an object array of `str` (bytes decoded as UTF-8)."""
    array = np.asarray(array, dtype=object)
    return np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else v, otypes=[object])(array)


@contextlib.contextmanager
def precision(name):
    """Inside the block, `compare` allows the rounding of `name` (a key of `TOLERANCES`)."""
    if name not in TOLERANCES:
        raise ValueError(f"Expected `name` among {list(TOLERANCES)}. Received: name={name!r}")
    token = _PRECISION.set(name)
    try:
        yield
    finally:
        _PRECISION.reset(token)


def compare(what, got, expected, rtol=None, atol=None):
    """Raises ServeCheckError unless `got` is `expected` (numbers within the rounding of
    the current `precision`: float32's unless set)."""
    rounding = _PRECISION.get()
    default_rtol, default_atol = TOLERANCES[rounding]
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
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
            f"Expected {what} equal within {rounding} rounding. Largest difference: {worst:g}"
        )


def compare_outputs(what, got, expected, names=None):
    """`compare` on each output of `expected` (or of `names`)."""
    for name in names or sorted(expected):
        compare(f"{what} output {name!r}", got[name], expected[name])
