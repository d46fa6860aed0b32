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
    shapes.update(EXTRA_SHAPES.get(kind, lambda units: {})(units))
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
        kind: a key of `STEPS`.
        weights: document-orientation weights (see `weight_shapes`).
        inputs: array of shape (batch, T, input_dim).
        initial_state: list of arrays of shape (batch, units).
        **options: activation, recurrent_activation, reset_after, norm_epsilon,
            layernorm_epsilon.

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


# ---------------------------------------------------------------- cell variants
# Layer norm: LN(v) = (v - mean) / sqrt(var + epsilon) * gamma + beta, with the
# mean and the biased variance over the last axis.


def _layer_norm(v, gamma, beta, epsilon):
    mean = v.mean(axis=-1, keepdims=True)
    variance = ((v - mean) ** 2).mean(axis=-1, keepdims=True)
    normalised = (v - mean) / np.sqrt(variance + epsilon) * gamma
    return normalised if beta is None else normalised + beta


def _stacked(w, prefix, gates, v):
    """`W v` for the document-orientation blocks `<prefix><g>` stacked in gate order."""
    return np.concatenate([v @ w[f"{prefix}{g}"].T for g in gates], axis=-1)


def _bias(w, gates):
    if f"b_{gates[0]}" not in w:
        return 0.0
    return np.concatenate([w[f"b_{g}"] for g in gates])


def layer_norm_lstm_step(
    w, x, states, activation="tanh", recurrent_activation="sigmoid", norm_epsilon=1e-3, **_
):
    h_prev, c_prev = states
    act, sig = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    gates = GATES["lstm"]
    z = (
        _layer_norm(_stacked(w, "W_x", gates, x), w["gamma_x"], w["beta_x"], norm_epsilon)
        + _layer_norm(_stacked(w, "W_h", gates, h_prev), w["gamma_h"], w["beta_h"], norm_epsilon)
        + _bias(w, gates)
    )
    a_i, a_f, a_c, a_o = np.split(z, 4, axis=-1)
    i, f, c_tilde, o = sig(a_i), sig(a_f), act(a_c), sig(a_o)
    c = _layer_norm(f * c_prev + i * c_tilde, w["gamma_c"], w["beta_c"], norm_epsilon)
    h = o * act(c)
    return h, [h, c], {"i": i, "f": f, "c_tilde": c_tilde, "c": c, "o": o, "h": h}


def layer_norm_simple_rnn_step(w, x, states, activation="tanh", layernorm_epsilon=1e-5, **_):
    (h_prev,) = states
    a = x @ w["W_xh"].T + h_prev @ w["W_hh"].T
    h = ACTIVATIONS[activation](
        _layer_norm(a, w["gamma"], None, layernorm_epsilon) + w.get("b_h", 0.0)
    )
    return h, [h], {"h": h}


def layer_norm_gru_step(
    w, x, states, activation="tanh", recurrent_activation="sigmoid", norm_epsilon=1e-3, **_
):
    (h_prev,) = states
    act, sig = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    gates = GATES["gru"]
    u = _layer_norm(_stacked(w, "W_x", gates, x), w["gamma_x"], w["beta_x"], norm_epsilon)
    v = _layer_norm(_stacked(w, "W_h", gates, h_prev), w["gamma_h"], w["beta_h"], norm_epsilon)
    u_z, u_r, u_h = np.split(u, 3, axis=-1)
    v_z, v_r, v_h = np.split(v, 3, axis=-1)
    z = sig(u_z + v_z + w.get("b_z", 0.0))
    r = sig(u_r + v_r + w.get("b_r", 0.0))
    h_tilde = act(u_h + r * v_h + w.get("b_h", 0.0))
    h = (1.0 - z) * h_prev + z * h_tilde
    return h, [h], {"z": z, "r": r, "h_tilde": h_tilde, "h": h}


def peephole_lstm_step(w, x, states, activation="tanh", recurrent_activation="sigmoid", **_):
    h_prev, c_prev = states
    act, sig = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    i = sig(_affine(w, x, h_prev, "i") + w["p_i"] * c_prev)
    f = sig(_affine(w, x, h_prev, "f") + w["p_f"] * c_prev)
    c_tilde = act(_affine(w, x, h_prev, "c"))
    c = f * c_prev + i * c_tilde
    o = sig(_affine(w, x, h_prev, "o") + w["p_o"] * c)
    h = o * act(c)
    return h, [h, c], {"i": i, "f": f, "c_tilde": c_tilde, "c": c, "o": o, "h": h}


def cifg_lstm_step(w, x, states, activation="tanh", recurrent_activation="sigmoid", **_):
    h_prev, c_prev = states
    act, sig = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    f = sig(_affine(w, x, h_prev, "f"))
    i = 1.0 - f
    c_tilde = act(_affine(w, x, h_prev, "c"))
    c = f * c_prev + i * c_tilde
    o = sig(_affine(w, x, h_prev, "o"))
    h = o * act(c)
    return h, [h, c], {"i": i, "f": f, "c_tilde": c_tilde, "c": c, "o": o, "h": h}


GATES.update(
    {
        "layer_norm_lstm": GATES["lstm"],
        "layer_norm_simple_rnn": GATES["simple_rnn"],
        "layer_norm_gru": GATES["gru"],
        "peephole_lstm": GATES["lstm"],
        "cifg_lstm": ("f", "c", "o"),
    }
)
INTERMEDIATES.update(
    {
        "layer_norm_lstm": INTERMEDIATES["lstm"],
        "layer_norm_simple_rnn": INTERMEDIATES["simple_rnn"],
        "layer_norm_gru": INTERMEDIATES["gru"],
        "peephole_lstm": INTERMEDIATES["lstm"],
        "cifg_lstm": INTERMEDIATES["lstm"],
    }
)
N_STATES.update(
    {
        "layer_norm_lstm": 2,
        "layer_norm_simple_rnn": 1,
        "layer_norm_gru": 1,
        "peephole_lstm": 2,
        "cifg_lstm": 2,
    }
)
STEPS.update(
    {
        "layer_norm_lstm": layer_norm_lstm_step,
        "layer_norm_simple_rnn": layer_norm_simple_rnn_step,
        "layer_norm_gru": layer_norm_gru_step,
        "peephole_lstm": peephole_lstm_step,
        "cifg_lstm": cifg_lstm_step,
    }
)


def _norm_shapes(size, *suffixes):
    return {f"{kind}_{suffix}": (size,) for suffix in suffixes for kind in ("gamma", "beta")}


# The weights of a kind beyond its W_x<g>, W_h<g> and b_<g>, by units.
EXTRA_SHAPES = {
    "layer_norm_lstm": lambda units: {
        **_norm_shapes(4 * units, "x", "h"),
        **_norm_shapes(units, "c"),
    },
    "layer_norm_simple_rnn": lambda units: {"gamma": (units,)},
    "layer_norm_gru": lambda units: _norm_shapes(3 * units, "x", "h"),
    "peephole_lstm": lambda units: {f"p_{g}": (units,) for g in ("i", "f", "o")},
}
