"""Float64 NumPy reference of the cells' equations, independent of the package.

The equations are those of the README's "The equations" section and of the
cells' docstrings (`keras_seqcells/cells/*.py`); each step function below
writes them out again.

Weights are dicts in document orientation: `W_x<g>` has shape (units, input_dim),
`W_h<g>` (units, units), `b_<g>` (units,); a missing `b_<g>` means no bias. Row
vectors are used here, so `W x` is written `x @ W.T`.
"""

import numpy as np


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda a: np.maximum(a, 0.0),
    "linear": lambda a: a,
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda a: np.clip(a / 6.0 + 0.5, 0.0, 1.0),
}

GATES = {"simple_rnn": ("h",), "lstm": ("i", "f", "c", "o"), "gru": ("z", "r", "h")}

INTERMEDIATES = {
    "simple_rnn": ("h",),
    "lstm": ("i", "f", "c_tilde", "c", "o", "h"),
    "gru": ("z", "r", "h_tilde", "h"),
}

N_STATES = {"simple_rnn": 1, "lstm": 2, "gru": 1}


def weight_shapes(kind, input_dim, units, use_bias=True, output_units=None):
    """Names and shapes of the document-orientation weights of a cell."""
    shapes = {}
    for g in GATES[kind]:
        shapes[f"W_x{g}"] = (units, input_dim)
        shapes[f"W_h{g}"] = (units, units)
        if use_bias:
            shapes[f"b_{g}"] = (units,)
    if output_units is not None:
        shapes["W_hy"] = (output_units, units)
        if use_bias:
            shapes["b_y"] = (output_units,)
    return shapes


def _affine(w, x, h, g):
    """W_xg x + W_hg h + b_g, for a batch of row vectors."""
    a = x @ w[f"W_x{g}"].T + h @ w[f"W_h{g}"].T
    return a + w[f"b_{g}"] if f"b_{g}" in w else a


def _softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def simple_rnn_step(w, x, states, activation="tanh", **_):
    (h_prev,) = states
    h = ACTIVATIONS[activation](_affine(w, x, h_prev, "h"))
    gates = {"h": h}
    if "W_hy" not in w:
        return h, [h], gates
    logits = h @ w["W_hy"].T
    if "b_y" in w:
        logits = logits + w["b_y"]
    gates["y"] = _softmax(logits)
    return gates["y"], [h], gates


def lstm_step(w, x, states, activation="tanh", recurrent_activation="sigmoid", **_):
    h_prev, c_prev = states
    act, sig = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    i = sig(_affine(w, x, h_prev, "i"))
    f = sig(_affine(w, x, h_prev, "f"))
    c_tilde = act(_affine(w, x, h_prev, "c"))
    c = f * c_prev + i * c_tilde
    o = sig(_affine(w, x, h_prev, "o"))
    h = o * act(c)
    return h, [h, c], {"i": i, "f": f, "c_tilde": c_tilde, "c": c, "o": o, "h": h}


def gru_step(
    w, x, states, activation="tanh", recurrent_activation="sigmoid", reset_after=True, **_
):
    (h_prev,) = states
    act, sig = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    z = sig(_affine(w, x, h_prev, "z"))
    r = sig(_affine(w, x, h_prev, "r"))
    recurrent = r * (h_prev @ w["W_hh"].T) if reset_after else (r * h_prev) @ w["W_hh"].T
    h_tilde = act(x @ w["W_xh"].T + recurrent + w.get("b_h", 0.0))
    h = (1.0 - z) * h_prev + z * h_tilde
    return h, [h], {"z": z, "r": r, "h_tilde": h_tilde, "h": h}


STEPS = {"simple_rnn": simple_rnn_step, "lstm": lstm_step, "gru": gru_step}


def run(kind, weights, inputs, initial_state, **options):
    """Runs a cell over a sequence in float64.

    Args:
        kind: "simple_rnn", "lstm" or "gru".
        weights: document-orientation weights (see `weight_shapes`).
        inputs: array of shape (batch, T, input_dim).
        initial_state: list of arrays of shape (batch, units).
        **options: activation, recurrent_activation, reset_after.

    Returns:
        (outputs of shape (batch, T, output_size), list of final states,
        dict of per-step intermediates of shape (batch, T, size)).
    """
    w = {name: np.asarray(value, dtype=np.float64) for name, value in weights.items()}
    x = np.asarray(inputs, dtype=np.float64)
    states = [np.asarray(s, dtype=np.float64) for s in initial_state]
    outputs, per_step = [], {}
    for t in range(x.shape[1]):
        out, states, gates = STEPS[kind](w, x[:, t, :], states, **options)
        outputs.append(out)
        for name, value in gates.items():
            per_step.setdefault(name, []).append(value)
    intermediates = {name: np.stack(v, axis=1) for name, v in per_step.items()}
    return np.stack(outputs, axis=1), states, intermediates
