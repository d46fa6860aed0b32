"""The export adapter of next-word prediction: `prompt` to the likeliest next words.

It belongs to the task and registers itself when `keras_seqcells.tasks` is
imported; serving only knows the adapter interface.
"""

import numpy as np
import tensorflow as tf

from keras_seqcells.serving.adapters import ExportAdapter, Serving, StepParts, register_adapter
from keras_seqcells.serving.comparison import ServeCheckError, compare, decoded
from keras_seqcells.serving.text import batch_of_strings, string_spec, tokenize, vocabulary_table
from keras_seqcells.tasks.next_word import NextWord, vocabulary_layer
from keras_seqcells.tasks.next_word import tokenize as python_tokenize


def _vocabulary(model):
    return list(vocabulary_layer(model).vocabulary)


class NextWordAdapter(ExportAdapter):
    """Prompts, tokenised in the graph, to the next word's probabilities and `top` words.

    The `step` signature takes one token (a word of the vocabulary) per step.
    """

    name = "next-word"

    def resources(self, model):
        return {"vocabulary": vocabulary_table(_vocabulary(model))}

    def _answer(self, model, top):
        words = _vocabulary(model)
        top = min(top, len(words) - 1)
        words = tf.constant(words)

        def answer(logits):
            logits = tf.cast(logits, tf.float32)
            probabilities = tf.nn.softmax(logits, axis=-1)
            # `[UNK]` (id 0) is never proposed.
            masked = tf.concat([tf.fill([tf.shape(logits)[0], 1], -np.inf), logits[:, 1:]], axis=1)
            best = tf.math.top_k(masked, k=top).indices
            return {
                "probabilities": probabilities,
                "top_words": tf.gather(words, best),
                "top_probabilities": tf.gather(probabilities, best, batch_dims=1),
            }

        return answer

    def serving(self, model, runner, resources, top):
        table = resources["vocabulary"]
        answer = self._answer(model, top)

        def serve(prompt):
            tokens = tokenize(batch_of_strings(prompt, "prompt"))
            counts = tf.cast(tokens.row_lengths(), tf.int32)
            check = tf.debugging.Assert(
                tf.reduce_all(counts > 0), ["Expected prompts with words in `prompt`."]
            )
            with tf.control_dependencies([check]):
                ids = table.lookup(tokens).to_tensor(0)
            logits = runner(ids)
            last = tf.gather(logits, tf.maximum(counts - 1, 0), batch_dims=1)
            return answer(last)

        examples = {"prompt": ["the just man", "and socrates said that"]}
        return Serving(serve, [string_spec("prompt")], examples)

    def step(self, model, resources, top):
        table = resources["vocabulary"]

        def prepare(token):
            token = batch_of_strings(token, "token")
            return table.lookup(tf.strings.lower(token, encoding="utf-8"))

        return StepParts(string_spec("token"), prepare, self._answer(model, top))

    def step_example(self, examples, input_name):
        prompt = examples["prompt"][0]
        return {
            "inputs": [{input_name: [token]} for token in python_tokenize(prompt)],
            "serving_default": {"prompt": [prompt]},
            "outputs": ["probabilities"],
        }

    def keras_answers(self, model, feed, top=5):
        answers = NextWord().predict(model, list(feed["prompt"]), top=top)
        return {
            "top_words": np.array([[w for w, _ in row] for row in answers], dtype=object),
            "top_probabilities": np.array([[p for _, p in row] for row in answers]),
        }

    def compare_with_keras(self, got, expected):
        compare("top_probabilities", got["top_probabilities"], expected["top_probabilities"])
        words = decoded(got["top_words"])
        same = words == expected["top_words"]
        # Words whose probabilities tie within rounding may come in either order.
        probabilities = expected["top_probabilities"]
        tied = np.zeros_like(same)
        tied[:, 1:] |= np.isclose(probabilities[:, 1:], probabilities[:, :-1], rtol=1e-5)
        tied[:, :-1] |= np.isclose(probabilities[:, :-1], probabilities[:, 1:], rtol=1e-5)
        if not np.all(same | tied):
            raise ServeCheckError(
                f"Expected top_words {expected['top_words'].tolist()}. Received: {words.tolist()}"
            )


register_adapter(NextWordAdapter())
