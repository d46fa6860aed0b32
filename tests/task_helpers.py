"""What the task tests share."""

from keras_seqcells.tasks import TrainSettings


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
