"""A small, deterministic forecasting training run for the fault tests.

    python tests/scripts/fault_training.py OUTPUT_DIR [--hang-after EPOCHS MARKER]
        [--kill-in {weights,state} EPOCH] [--steps-file FILE]
        [--distribute] [--devices N] [--dropout RATE] [--limit N]

The run prints `running epoch N` (N from 1) when it starts each epoch it
trains, so a test can tell which epochs a process ran itself. With
`--hang-after`, the run writes MARKER after that many epochs (once their
backup is written) and waits to be killed. With `--kill-in weights EPOCH`
the process SIGKILLs itself inside the HDF5 write of that epoch's backup
weights (after two of its datasets are written); with `--kill-in state
EPOCH`, inside the write of that backup's `state.json` (half of its text
written). With `--steps-file`, every replica appends `replica_id replicas
batch` to FILE at each training step, from inside the traced step. With
`--devices N`, the CPU is split into N logical devices before
TensorFlow starts; `--distribute` trains under
`tf.distribute.MirroredStrategy` on them.
"""

import argparse
import os
import pathlib
import signal
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


class PrintEpochs(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        print(f"running epoch {epoch + 1}", flush=True)


def record_training_steps(path):
    """Makes every replica append `replica_id replicas batch` to `path` each step.

    The line is printed from inside the traced training step, so it shows
    what the step runs on, whatever the strategy object says.
    """
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    train_step = TensorFlowTrainer.train_step

    def recorded_train_step(self, data):
        context = tf.distribute.get_replica_context()
        inputs = tf.nest.flatten(data)[0]
        tf.print(
            context.replica_id_in_sync_group,
            context.num_replicas_in_sync,
            tf.shape(inputs)[0],
            output_stream=f"file://{path}",
        )
        return train_step(self, data)

    TensorFlowTrainer.train_step = recorded_train_step


def kill_inside_backup_write(where, epoch):
    """SIGKILLs this process part-way through writing the backup of `epoch`."""
    import h5py

    from keras_seqcells.tasks import checkpoints

    saving = {"epoch": None, "datasets": 0}
    save_model = checkpoints.ResumableTraining._save_model

    def save_and_watch(self):
        saving["epoch"] = self._current_epoch
        try:
            save_model(self)
        finally:
            saving["epoch"] = None

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if where == "weights":
        create_dataset = h5py.Group.create_dataset

        def create_then_maybe_die(group, *args, **kwargs):
            dataset = create_dataset(group, *args, **kwargs)
            if saving["epoch"] == epoch:
                saving["datasets"] += 1
                if saving["datasets"] == 2:
                    group.file.flush()
                    die()
            return dataset

        h5py.Group.create_dataset = create_then_maybe_die
    else:
        write_text = pathlib.Path.write_text

        def write_half_then_die(path, text, *args, **kwargs):
            if saving["epoch"] == epoch and path.name.startswith(".state-"):
                write_text(path, text[: len(text) // 2], *args, **kwargs)
                die()
            return write_text(path, text, *args, **kwargs)

        pathlib.Path.write_text = write_half_then_die
    checkpoints.ResumableTraining._save_model = save_and_watch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("--hang-after", nargs=2, metavar=("EPOCHS", "MARKER"))
    parser.add_argument("--kill-in", nargs=2, metavar=("WHERE", "EPOCH"))
    parser.add_argument("--steps-file", help="where each replica records its training steps")
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

    if args.steps_file:
        record_training_steps(args.steps_file)
    if args.kill_in:
        kill_inside_backup_write(args.kill_in[0], int(args.kill_in[1]))
    callbacks = [PrintEpochs()]
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
