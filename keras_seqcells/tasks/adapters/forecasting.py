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

    The `step` signature takes one `value` per step.
    """

    name = "forecasting"

    def serving(self, model, runner, resources, top):
        window = model.inputs[0].shape[1]

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
                window_values = tf.ensure_shape(window_values, [None, window])
                outputs = runner(window_values[..., None])
            if isinstance(outputs, dict):
                outputs = outputs["forecast"]
            return {"forecast": tf.cast(outputs, tf.float32)}

        spec = [tf.TensorSpec([None, None], tf.float32, name="window")]
        normalize = model.get_layer("normalize")
        std = 1.0 / float(np.asarray(normalize.scale))
        mean = -float(np.asarray(normalize.offset)) * std
        steps = np.arange(window, dtype="float64")
        examples = {
            "window": [
                (mean + std * np.sin(steps / 3.0)).astype("float32").tolist(),
                (mean - 0.5 * std * np.cos(steps / 5.0)).astype("float32").tolist(),
            ]
        }
        return Serving(serve, spec, examples)

    def step(self, model, resources, top):
        return StepParts(
            tf.TensorSpec([None], tf.float32, name="value"),
            lambda value: value[:, None],
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
        return {"forecast": forecast(model, np.asarray(feed["window"], "float32")[..., None])}


register_adapter(ForecastingAdapter())
