"""The export adapter of text classification: `text` to `probabilities` and `label`.

It belongs to the task and registers itself when `keras_seqcells.tasks` is
imported; serving only knows the adapter interface.
"""

import numpy as np
import tensorflow as tf

from keras_seqcells.serving.adapters import ExportAdapter, Serving, register_adapter
from keras_seqcells.serving.comparison import compare
from keras_seqcells.serving.text import batch_of_strings, check_non_empty, string_spec
from keras_seqcells.tasks.text_classification import TextClassification, class_names


class TextClassificationAdapter(ExportAdapter):
    """A batch of texts to each class's probability and the most probable label."""

    name = "text-classification"
    whole_input_reason = "the text is preprocessed as a whole"

    def serving(self, model, runner, resources, top):
        names = tf.constant(list(class_names(model)))
        width = model.output_shape[-1]

        def serve(text):
            text = batch_of_strings(text, "text")
            check = check_non_empty(text, "Expected non-empty texts in `text`.")
            with tf.control_dependencies([check]):
                outputs = tf.cast(runner(text), tf.float32)
            outputs = tf.reshape(outputs, [-1, width])
            # A two-class model's one sigmoid output is the second class's probability.
            if width == 1:
                outputs = tf.concat([1.0 - outputs, outputs], axis=-1)
            return {
                "probabilities": outputs,
                "label": tf.gather(names, tf.argmax(outputs, axis=-1, output_type=tf.int32)),
            }

        examples = {
            "text": ["a gripping , beautifully acted film .", "dull , lifeless and too long ."]
        }
        return Serving(serve, [string_spec("text")], examples)

    def keras_answers(self, model, feed, top=5):
        answers = TextClassification().predict(model, list(feed["text"]))
        return {
            "label": np.array([label for label, _ in answers], dtype=object),
            "probabilities": np.array([list(p.values()) for _, p in answers], dtype="float32"),
        }

    def compare_with_keras(self, got, expected):
        compare("label", got["label"], expected["label"])
        compare("probabilities", got["probabilities"], expected["probabilities"])


register_adapter(TextClassificationAdapter())
