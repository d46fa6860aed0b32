"""A small, deterministic forecasting training run for the fault tests.

    python tests/scripts/fault_training.py OUTPUT_DIR [--hang-after EPOCHS MARKER]
        [--distribute] [--devices N] [--dropout RATE]

With `--hang-after`, the run writes MARKER after that many epochs (once
their backup is written) and waits to be killed. With `--devices N`, the CPU
is split into N logical devices before TensorFlow starts; `--distribute`
trains under `tf.distribute.MirroredStrategy` on them.
"""

import argparse
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import tensorflow as tf

SETTINGS = {"units": 4, "epochs": 5, "batch_size": 16, "patience": 5, "seed": 3, "verbose": 0}
TASK_OPTIONS = {"window": 12, "horizon": 3, "min_epoch_windows": 64, "dropout": 0.1}


class HangAfter(keras.callbacks.Callback):
    def __init__(self, epochs, marker):
        super().__init__()
        self.epochs, self.marker = epochs, pathlib.Path(marker)

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            self.marker.write_text(str(epoch + 1))
            time.sleep(600)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("--hang-after", nargs=2, metavar=("EPOCHS", "MARKER"))
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--distribute", action="store_true")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--limit", type=int, help="windows kept per split")
    args = parser.parse_args()
    if args.devices > 1:
        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.devices
        )
    tf.config.experimental.enable_op_determinism()

    from keras_seqcells.tasks import Forecasting

    task = Forecasting(**{**TASK_OPTIONS, "dropout": args.dropout})
    settings = task.settings(**SETTINGS, output_dir=args.output_dir)

    callbacks = []
    if args.hang_after:
        callbacks.append(HangAfter(int(args.hang_after[0]), args.hang_after[1]))
    strategy = tf.distribute.MirroredStrategy() if args.distribute else None
    if strategy is not None:
        print(f"replicas: {strategy.num_replicas_in_sync}")
    result = task.train(
        settings,
        source="airline-passengers",
        limit=args.limit,
        callbacks=callbacks,
        strategy=strategy,
    )
    print(f"epochs: {len(result.history['loss'])}")
    print("loss:", result.history["loss"])


if __name__ == "__main__":
    main()
