"""The export adapter of tagging: `sentence` to `tokens`, `tags`, `probabilities`, `lengths`.

Registered by `keras_seqcells.tasks.tagging`, whose helpers it imports when
it runs (never at import: serving does not depend on tasks).
"""

import tensorflow as tf

from keras_seqcells.serving.adapters import ExportAdapter, Serving, register_adapter
from keras_seqcells.serving.comparison import compare
from keras_seqcells.serving.text import (
    batch_of_strings,
    check_non_empty,
    normalise_spaces,
    string_spec,
)
from keras_seqcells.tasks.tagging import Tagging, tag_names


class TaggingAdapter(ExportAdapter):
    """A batch of sentences to their tokens and each token's tag.

    Sentences longer than the model's length are cut into pieces in the
    graph, tagged piece by piece and put together again, as the task's
    Python `predict` does.
    """

    name = "tagging"
    whole_input_reason = "the text is preprocessed as a whole"

    def serving(self, model, runner, resources, top):
        names = tf.constant(list(tag_names(model)))
        length = model.output_shape[1]

        def serve(sentence):
            sentence = batch_of_strings(sentence, "sentence")
            check = check_non_empty(sentence, "Expected non-empty sentences in `sentence`.")
            with tf.control_dependencies([check]):
                words = tf.strings.split(normalise_spaces(sentence), sep=" ")
            counts = tf.cast(words.row_lengths(), tf.int32)
            # Each sentence cut into pieces of at most `length` tokens, as in Python.
            pieces_per_row = tf.maximum((counts + length - 1) // length, 1)
            first_piece = tf.cumsum(pieces_per_row, exclusive=True)
            position = tf.ragged.range(counts).flat_values
            row = tf.cast(words.value_rowids(), tf.int32)
            piece = tf.gather(first_piece, row) + position // length
            pieces = tf.RaggedTensor.from_value_rowids(
                words.flat_values, piece, nrows=tf.reduce_sum(pieces_per_row)
            )
            probabilities = tf.cast(
                runner(tf.strings.reduce_join(pieces, axis=1, separator=" ")), tf.float32
            )
            token_probabilities = tf.gather_nd(
                probabilities, tf.stack([piece, position % length], -1)
            )
            per_sentence = tf.RaggedTensor.from_value_rowids(
                token_probabilities, row, nrows=tf.shape(sentence)[0]
            )
            best = tf.argmax(per_sentence.flat_values, axis=-1, output_type=tf.int32)
            tags = per_sentence.with_flat_values(tf.gather(names, best))
            return {
                "tokens": words.to_tensor(""),
                "tags": tags.to_tensor(""),
                "probabilities": per_sentence.to_tensor(0.0),
                "lengths": counts,
            }

        examples = {
            "sentence": [
                "I love New York in the spring .",
                "The  cat sat on the mat .",
                "Hi",
            ]
        }
        return Serving(serve, [string_spec("sentence")], examples)

    def keras_answers(self, model, feed, top=5):
        return {"tags": Tagging().predict(model, list(feed["sentence"]))}

    def compare_with_keras(self, got, expected):
        for row, pairs in enumerate(expected["tags"]):
            n = int(got["lengths"][row])
            compare(f"tokens of sentence {row}", got["tokens"][row, :n], [t for t, _ in pairs])
            compare(f"tags of sentence {row}", got["tags"][row, :n], [tag for _, tag in pairs])


register_adapter(TaggingAdapter())
