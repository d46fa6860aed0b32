"""Tools that show what happens inside the recurrent layers."""

from keras_seqcells.diagnostics.trace import trace

__all__ = ["trace"]
