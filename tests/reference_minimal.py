"""Float64 NumPy reference of minGRU and minLSTM (Feng et al., 2024), independent of the package.

The equations are those of `MinGRUCell` and `MinLSTMCell` (and the README's
minGRU / minLSTM section), written out again in linear space, step by step.
Weights are dicts in document orientation, as in `tests/reference.py`:
`W_x<g>` of shape (units, input_dim) and `b_<g>` of shape (units,); a missing
`b_<g>` means no bias. There is no `W_h<g>`: no gate reads `h_{t-1}`.
"""

import numpy as np

GATES = {"min_gru": ("z", "h"), "min_lstm": ("f", "i", "h")}
INTERMEDIATES = {
    "min_gru": ("z", "h_tilde", "h"),
    "min_lstm": ("f", "i", "f_prime", "i_prime", "h_tilde", "h"),
}


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def g(a):
    """The positive candidate function: a + 0.5 for a >= 0, sigmoid(a) below."""
    return np.where(a >= 0, a + 0.5, _sigmoid(a))


def weight_shapes(kind, input_dim, units, use_bias=True):
    shapes = {f"W_x{gate}": (units, input_dim) for gate in GATES[kind]}
    if use_bias:
        shapes.update({f"b_{gate}": (units,) for gate in GATES[kind]})
    return shapes


def _affine(w, x, gate):
    a = x @ w[f"W_x{gate}"].T
    return a + w[f"b_{gate}"] if f"b_{gate}" in w else a


def min_gru_step(w, x, h_prev):
    z = _sigmoid(_affine(w, x, "z"))
    h_tilde = g(_affine(w, x, "h"))
    h = (1.0 - z) * h_prev + z * h_tilde
    return h, {"z": z, "h_tilde": h_tilde, "h": h}


def min_lstm_step(w, x, h_prev):
    f = _sigmoid(_affine(w, x, "f"))
    i = _sigmoid(_affine(w, x, "i"))
    h_tilde = g(_affine(w, x, "h"))
    f_prime = f / (f + i)
    i_prime = i / (f + i)
    h = f_prime * h_prev + i_prime * h_tilde
    return h, {"f": f, "i": i, "f_prime": f_prime, "i_prime": i_prime, "h_tilde": h_tilde, "h": h}


STEPS = {"min_gru": min_gru_step, "min_lstm": min_lstm_step}


def run(kind, weights, inputs, initial_state, mask=None, go_backwards=False, masked="previous"):
    """Runs a cell over a sequence in float64, as Keras's loops do.

    A masked step carries the state; its output is the previous output
    (zeros before the first unmasked step) with `masked="previous"` (Keras's
    TensorFlow and torch loops), or the carried state with `masked="state"`
    (Keras's JAX scan). With `go_backwards` the steps run from the last to
    the first and the outputs are in processing order.

    Returns:
        (outputs of shape (batch, T, units), final state, dict of per-step
        intermediates of shape (batch, T, units), unmasked steps only
        meaningful).
    """
    w = {name: np.asarray(value, dtype=np.float64) for name, value in weights.items()}
    x = np.asarray(inputs, dtype=np.float64)
    h = np.asarray(initial_state, dtype=np.float64)
    mask = np.ones(x.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    order = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    output = h.copy() if masked == "state" else np.zeros_like(h)
    outputs, per_step = [], {}
    for t in order:
        new_h, values = STEPS[kind](w, x[:, t, :], h)
        keep = mask[:, t : t + 1]
        h = np.where(keep, new_h, h)
        output = np.where(keep, new_h, output)
        outputs.append(output)
        for name, value in values.items():
            per_step.setdefault(name, []).append(value)
    intermediates = {name: np.stack(v, axis=1) for name, v in per_step.items()}
    return np.stack(outputs, axis=1), h, intermediates
