"""What the task tests share."""

import keras

from keras_seqcells.tasks import TrainSettings


class Interrupt(Exception):
    """Stands for a training process killed part-way."""


class InterruptAfterFirstEpoch(keras.callbacks.Callback):
    """Interrupts training at the end of its first epoch."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise Interrupt


def tiny_settings(tmp_path, **overrides):
    """Training settings small enough for a test: 4 units, 1 epoch, no output."""
    settings = {
        "units": 4,
        "epochs": 1,
        "batch_size": 16,
        "output_dir": str(tmp_path),
        "verbose": 0,
    }
    return TrainSettings(**{**settings, **overrides})
