"""Tools that show what happens inside the recurrent layers."""

from keras_seqcells.diagnostics.callbacks import GradientNormLogger
from keras_seqcells.diagnostics.gradients import gradient_flow
from keras_seqcells.diagnostics.trace import trace

__all__ = ["GradientNormLogger", "gradient_flow", "trace"]
