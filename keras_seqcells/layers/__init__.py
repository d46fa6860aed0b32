"""RNN layers built on the keras_seqcells cells: drop-in for Keras's own.

`SimpleRNN`, `LSTM` and `GRU` take their cell's arguments like Keras's layers;
`RNN` runs any `RecurrentCell` (yours included) on the same fast path.
"""

from keras_seqcells.layers.base import RNN, CellLayer, SeqCellRNN
from keras_seqcells.layers.cudnn import CudnnCapableRNN
from keras_seqcells.layers.gru import GRU
from keras_seqcells.layers.loops import (
    StateHook,
    portable_graphs,
    run_steps,
    set_xla_loop,
    state_hooks,
)
from keras_seqcells.layers.lstm import LSTM
from keras_seqcells.layers.minimal import MinGRU, MinimalRNN, MinLSTM
from keras_seqcells.layers.simple_rnn import SimpleRNN
from keras_seqcells.layers.variants import (
    CIFGLSTM,
    LayerNormGRU,
    LayerNormLSTM,
    LayerNormSimpleRNN,
    PeepholeLSTM,
)

#: The layer of each cell name, as tasks, builders and the command line spell it.
CELL_LAYERS = {
    "simple_rnn": SimpleRNN,
    "lstm": LSTM,
    "gru": GRU,
    "layer_norm_lstm": LayerNormLSTM,
    "layer_norm_simple_rnn": LayerNormSimpleRNN,
    "layer_norm_gru": LayerNormGRU,
    "peephole_lstm": PeepholeLSTM,
    "cifg_lstm": CIFGLSTM,
    "min_gru": MinGRU,
    "min_lstm": MinLSTM,
}


def layer_for_cell(cell):
    """Returns the layer class for a cell name: `"simple_rnn"`, `"lstm"` or `"gru"`."""
    if cell not in CELL_LAYERS:
        raise ValueError(
            f"Expected `cell` to be one of {sorted(CELL_LAYERS)}. Received: cell={cell!r}"
        )
    return CELL_LAYERS[cell]


__all__ = [
    "CELL_LAYERS",
    "CIFGLSTM",
    "GRU",
    "LSTM",
    "RNN",
    "CellLayer",
    "CudnnCapableRNN",
    "LayerNormGRU",
    "LayerNormLSTM",
    "LayerNormSimpleRNN",
    "MinGRU",
    "MinLSTM",
    "MinimalRNN",
    "PeepholeLSTM",
    "SeqCellRNN",
    "SimpleRNN",
    "StateHook",
    "layer_for_cell",
    "portable_graphs",
    "run_steps",
    "set_xla_loop",
    "state_hooks",
]
