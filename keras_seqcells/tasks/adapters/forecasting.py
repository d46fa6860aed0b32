"""The export adapter of forecasting: float32 `window`s to their `forecast`.

It belongs to the task and registers itself when `keras_seqcells.tasks` is
imported; serving only knows the adapter interface.
"""

import numpy as np
import tensorflow as tf

from keras_seqcells.serving.adapters import ExportAdapter, Serving, StepParts, register_adapter
from keras_seqcells.tasks.forecasting import forecast


class ForecastingAdapter(ExportAdapter):
    """Windows of a series' values, `(batch, window)`, to the forecasts that follow them.

    A model of several input columns (targets, then features, then the
    one-hot columns of categorical features) takes `(batch, window, columns)`
    windows, in the column order of its training data. The `step` signature
    takes one `value` per step (`(batch, columns)` for several columns).
    """

    name = "forecasting"

    def serving(self, model, runner, resources, top):
        window, n_columns = model.inputs[0].shape[1:]
        several = n_columns != 1

        def serve(window_values):
            # The length is checked here, not by the signature's shape, so that a
            # server (which does not check shapes) answers a wrong one clearly too.
            length = tf.debugging.Assert(
                tf.equal(tf.shape(window_values)[1], window),
                [
                    f"Expected windows of {window} values in `window`. Received:",
                    tf.shape(window_values),
                ],
            )
            with tf.control_dependencies([length]):
                finite = tf.debugging.Assert(
                    tf.reduce_all(tf.math.is_finite(window_values)),
                    ["Expected finite values in `window`."],
                )
            with tf.control_dependencies([finite]):
                if several:
                    window_values = tf.ensure_shape(window_values, [None, window, n_columns])
                    outputs = runner(window_values)
                else:
                    window_values = tf.ensure_shape(window_values, [None, window])
                    outputs = runner(window_values[..., None])
            if isinstance(outputs, dict):
                outputs = outputs["forecast"]
            return {"forecast": tf.cast(outputs, tf.float32)}

        shape = [None, None, n_columns] if several else [None, None]
        spec = [tf.TensorSpec(shape, tf.float32, name="window")]
        normalize = model.get_layer("normalize")
        scale = np.broadcast_to(np.asarray(normalize.scale, "float64"), (n_columns,))
        offset = np.broadcast_to(np.asarray(normalize.offset, "float64"), (n_columns,))
        std, mean = 1.0 / scale, -offset / scale
        steps = np.arange(window, dtype="float64")[:, None]
        first = mean + std * np.sin(steps / 3.0 + np.arange(n_columns))
        second = mean - 0.5 * std * np.cos(steps / 5.0 + np.arange(n_columns))
        examples = {
            "window": [
                (example if several else example[:, 0]).astype("float32").tolist()
                for example in (first, second)
            ]
        }
        return Serving(serve, spec, examples)

    def step(self, model, resources, top):
        n_columns = model.inputs[0].shape[2]
        shape = [None, n_columns] if n_columns != 1 else [None]
        return StepParts(
            tf.TensorSpec(shape, tf.float32, name="value"),
            (lambda value: value) if n_columns != 1 else (lambda value: value[:, None]),
            lambda x: {"forecast": tf.cast(x, tf.float32)},
        )

    def step_example(self, examples, input_name):
        window = examples["window"][0]
        return {
            "inputs": [{input_name: [value]} for value in window],
            "serving_default": {"window": [window]},
            "outputs": ["forecast"],
        }

    def keras_answers(self, model, feed, top=5):
        windows = np.asarray(feed["window"], "float32")
        if windows.ndim == 2:
            windows = windows[..., None]
        return {"forecast": forecast(model, windows)}


register_adapter(ForecastingAdapter())
