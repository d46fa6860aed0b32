"""Text preprocessing inside the serving graph, exactly as the tasks' Python code does it.

The preprocessing of text (the Python tokenisation of the next-word task,
the splitting of long sentences by the tagger) runs inside the graph with
`tf.strings` operations and lookup tables, written to give exactly the
tokens of the Python code. Checked over every Unicode code point, the graph
tokeniser differs from `next_word.tokenize` on about 270 of them only, all
from scripts added in recent Unicode versions, whose case mappings or
categories TensorFlow's ICU and Python's `unicodedata` do not share yet.
"""

import tensorflow as tf

# Python's `str.isspace()` characters (what `str.split()` and `\s` split on),
# as an RE2 character class body.
SPACE = r"\t\n\x{0b}\x{0c}\r\x{1c}-\x{1f}\x{85}\p{Z}"
# `next_word.TOKEN_PATTERN` in RE2: Python's `[^\W_]` (letters and digits)
# is `[\p{L}\p{N}]`, and `[^\w\s]` everything else but `_` and whitespace.
_WORD = r"[\p{L}\p{N}]"
_TOKEN_RE2 = rf"{_WORD}+(?:'{_WORD}+)*|--|[^\p{{L}}\p{{N}}_{SPACE}]"


def string_spec(name):
    """A batch of strings; its rank is checked in the graph (see `batch_of_strings`)."""
    return tf.TensorSpec(None, tf.string, name=name)


def batch_of_strings(strings, name):
    """`strings` if it is a rank-1 batch, else a clear error from the graph.

    Checked in the graph rather than by the signature's shape, which a server
    does not enforce: "Shape of tensor <name> [1,2] is not compatible with
    expected shape [?]".
    """
    return tf.ensure_shape(tf.identity(strings, name=name), [None])


def check_non_empty(strings, message):
    """Asserts that every string holds a non-whitespace character."""
    blank = tf.strings.regex_full_match(strings, rf"[{SPACE}]*")
    return tf.debugging.Assert(tf.logical_not(tf.reduce_any(blank)), [message])


def normalise_spaces(strings):
    """Every whitespace run (Python's `str.isspace`) as one ASCII space, stripped."""
    return tf.strings.strip(tf.strings.regex_replace(strings, rf"[{SPACE}]+", " "))


def tokenize(prompts):
    """`next_word.tokenize` in the graph: a ragged batch of tokens (strings)."""
    lowered = tf.strings.lower(prompts, encoding="utf-8")
    spaced = tf.strings.regex_replace(lowered, _TOKEN_RE2, r" \0 ")
    spaced = tf.strings.regex_replace(spaced, rf"[_{SPACE}]+", " ")
    return tf.strings.split(spaced)


def vocabulary_table(words):
    """A lookup table from each word to its index (0, the unknown word, for any other)."""
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(words)), tf.range(len(words), dtype=tf.int32)
        ),
        default_value=0,
    )
