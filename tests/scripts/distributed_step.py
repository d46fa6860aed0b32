"""A small keras_seqcells model trained with or without a distribution strategy.

    python tests/scripts/distributed_step.py MODE OUTPUT_JSON

MODE is `single` (no strategy, one device), `mirrored` (MirroredStrategy
over 2 logical CPU devices), `mirrored-ignored` (2 logical CPU devices, the
strategy created but the model built outside its scope: what a
`Task.train` that ignored its `strategy` argument would do) or `worker`
(MultiWorkerMirroredStrategy; the cluster comes from `TF_CONFIG`).

The model (an LSTM and a dense head, SGD) trains 2 epochs over 64 fixed
examples in global batches of 16, unshuffled, from the same initial
weights in every mode. Every training step, each replica appends
`replica_id replicas batch` to a steps file beside OUTPUT_JSON, from inside
the traced step. OUTPUT_JSON receives the final weights, the steps seen, and
for each variable whether its copies on the replicas are identical.
"""

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

GLOBAL_BATCH, EXAMPLES, TIMESTEPS, FEATURES, UNITS = 16, 64, 5, 3, 4


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(EXAMPLES, TIMESTEPS, FEATURES)).astype("float32")
    y = rng.normal(size=(EXAMPLES, 1)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    # Worker i takes the i-th half of each global batch, as one replica of
    # MirroredStrategy does, so every mode's step k sees the same examples.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _model(steps_file):
    import keras

    import keras_seqcells as ks

    class RecordingModel(keras.Sequential):
        def train_step(self, data):
            context = tf.distribute.get_replica_context()
            tf.print(
                context.replica_id_in_sync_group,
                context.num_replicas_in_sync,
                tf.shape(data[0])[0],
                output_stream=f"file://{steps_file}",
            )
            logs = super().train_step(data)
            if self.logs_as_vectors:
                logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
            return logs

    RecordingModel.logs_as_vectors = False
    keras.utils.set_random_seed(1)
    model = RecordingModel(
        [keras.Input((TIMESTEPS, FEATURES)), ks.LSTM(UNITS), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    return model


def _work_around_keras_multi_worker_fit(model):
    """Lets `fit` of Keras 3.15 run under `MultiWorkerMirroredStrategy`.

    Without this, `fit` fails twice there: it builds the loss, metrics and
    optimizer from its first distributed batch by reducing the (inputs,
    targets) tuple with the strategy's `reduce`, which that strategy refuses
    for a tuple ("Attempt to convert a value (PerReplica...) to a Tensor");
    and it reduces the scalar logs of each step with `reduce("MEAN",
    axis=0)`, which fails on a scalar. So the model is built from a local
    batch here, and its training step returns its logs as vectors of one
    value. Neither changes the training step's computation or its gradient
    all-reduce.
    """
    x, y = next(iter(_data()))
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=(x, y, None))
    model._maybe_symbolic_build = lambda *args, **kwargs: None
    model.logs_as_vectors = True


def main():
    mode, output = sys.argv[1], pathlib.Path(sys.argv[2])
    steps_file = output.with_suffix(".steps")
    if mode in ("mirrored", "mirrored-ignored"):
        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    strategy = {
        "single": None,
        "mirrored": tf.distribute.MirroredStrategy,
        "mirrored-ignored": tf.distribute.MirroredStrategy,
        "worker": tf.distribute.MultiWorkerMirroredStrategy,
    }[mode]
    strategy = strategy() if strategy else None
    if strategy is not None and mode != "mirrored-ignored":
        with strategy.scope():
            model = _model(steps_file)
    else:
        model = _model(steps_file)
    if mode == "worker":
        _work_around_keras_multi_worker_fit(model)
    model.fit(_data(), epochs=2, shuffle=False, verbose=0)

    in_sync = []
    for variable in model.trainable_variables:
        copies = getattr(variable._value, "values", None) or [variable._value]
        values = [np.asarray(copy) for copy in copies]
        in_sync.append(all(np.array_equal(values[0], other) for other in values[1:]))
    steps = [
        [int(field) for field in line.split()]
        for line in steps_file.read_text().splitlines()
        if line.strip()
    ]
    output.write_text(
        json.dumps(
            {
                "weights": [w.tolist() for w in model.get_weights()],
                "steps": steps,
                "copies": [
                    len(getattr(v._value, "values", [v._value])) for v in model.trainable_variables
                ],
                "in_sync": in_sync,
            }
        )
    )


if __name__ == "__main__":
    main()
