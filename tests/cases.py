"""The cells and layers under test: list a new cell here once and it gets every check."""

from dataclasses import dataclass, field

import pytest

import keras_seqcells as ks

# float64 checks at 1e-10 need float64 arithmetic throughout. Keras's type
# promotion maps 64-bit dtypes to 32-bit (JAX's default without x64), so on
# JAX ops such as tanh, and on torch `ops.matmul`, compute float64 in float32.
FLOAT64 = pytest.param(
    "float64",
    marks=pytest.mark.not_on_backend(
        "jax", "torch", reason="Keras computes some float64 ops in float32 on this backend"
    ),
)


@dataclass(frozen=True)
class CellCase:
    """One cell configuration, with the layer class that wraps it."""

    id: str
    cell_class: type
    layer_class: type
    kwargs: dict = field(default_factory=dict)

    def cell(self, units=4, **overrides):
        return self.cell_class(units, **{**self.kwargs, **overrides})

    def layer(self, units=4, **overrides):
        return self.layer_class(units, **{**self.kwargs, **overrides})

    @property
    def output_units(self):
        return self.kwargs.get("output_units")


# The three cells of the specification: the checks against Keras's own layers
# (parity, `from_keras`/`to_keras`, cuDNN, Keras's own tests) apply to these.
SPEC_CASES = [
    CellCase("simple_rnn", ks.SimpleRNNCell, ks.SimpleRNN),
    CellCase("simple_rnn_head", ks.SimpleRNNCell, ks.SimpleRNN, {"output_units": 3}),
    CellCase("lstm", ks.LSTMCell, ks.LSTM),
    CellCase("gru_reset_after", ks.GRUCell, ks.GRU, {"reset_after": True}),
    CellCase("gru_reset_before", ks.GRUCell, ks.GRU, {"reset_after": False}),
]

# Cells built on the public cell API beyond the specification's three.
VARIANT_CASES = [
    CellCase("layer_norm_lstm", ks.LayerNormLSTMCell, ks.LayerNormLSTM),
    CellCase("layer_norm_simple_rnn", ks.LayerNormSimpleRNNCell, ks.LayerNormSimpleRNN),
    CellCase("layer_norm_gru", ks.LayerNormGRUCell, ks.LayerNormGRU),
    CellCase("peephole_lstm", ks.PeepholeLSTMCell, ks.PeepholeLSTM),
    CellCase("cifg_lstm", ks.CIFGLSTMCell, ks.CIFGLSTM),
]

# Every cell: the shared checks (reference, fast paths, gradients, features,
# serialization, mixed precision, diagnostics) run over these.
CASES = SPEC_CASES + VARIANT_CASES

# `CASES` as pytest params with the variant cases marked slow, for the checks
# of the layers' shared machinery (loops, RNN features, export, diagnostics),
# which every cell runs through unchanged: by default the variants run through
# their own equations (test_reference, test_gradients, test_cell_variants).
CASE_PARAMS = [
    *SPEC_CASES,
    *(pytest.param(case, id=case.id, marks=pytest.mark.slow) for case in VARIANT_CASES),
]

CASE_IDS = [case.id for case in CASES]

# Cells whose gates do not read h_{t-1} (no recurrent kernel): the shared
# checks of `layer_test_helper.py` run on them in `test_minimal_cells.py`;
# their reference is `tests/reference_minimal.py`.
MIN_CASES = [
    CellCase("min_gru", ks.MinGRUCell, ks.MinGRU),
    CellCase("min_lstm", ks.MinLSTMCell, ks.MinLSTM),
]
