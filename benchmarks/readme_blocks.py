"""Generated blocks of the documentation, kept equal to committed benchmark output.

A benchmark script that measures something the documentation states writes its
text with `write_block(name, text)`: the text goes to
`benchmarks/results/<name>.md` and replaces the lines between
`<!-- <name>:start -->` and `<!-- <name>:end -->` in every document of
`DOCUMENTS` that holds those markers. `tests/test_readme_blocks.py` checks
that each block still equals its committed file, so a table edited by hand
or a result file rewritten without its block fails the tests.
"""

import os
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
#: The documents whose marked blocks are generated.
DOCUMENTS = (
    ROOT / "README.md",
    ROOT / "RELIABILITY.md",
    ROOT / "saved_models" / "README.md",
    ROOT / "docs" / "guide.md",
)
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_MARKER = re.compile(r"<!-- ([a-z0-9][a-z0-9-]*):start -->\n(.*?)<!-- \1:end -->", re.DOTALL)


def load_sentence(loads):
    """One sentence on the machine's load while a benchmark ran.

    Args:
        loads: 1-minute load averages sampled during the run.
    """
    return (
        f"Load average (1 minute) during the run: {sum(loads) / len(loads):.1f} on average, "
        f"{max(loads):.1f} at most, on {os.cpu_count()} cores (a load above one per core "
        "means other processes competed for the cores)"
    )


def _check_name(name):
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            "Expected `name` to be lower-case letters, digits and dashes, such as 'rnn'. "
            f"Received: name={name!r}"
        )


def result_path(name):
    """The committed file that holds block `name`'s text."""
    _check_name(name)
    return RESULTS / f"{name}.md"


def blocks(document):
    """`{name: text}` of the generated blocks in `document`."""
    return {match.group(1): match.group(2) for match in _MARKER.finditer(document.read_text())}


def write_block(name, text, documents=DOCUMENTS):
    """Writes `text` as block `name`: to its result file and into each document
    that marks the block. Returns the documents updated; a block that no
    document marks yet is an error, so a renamed marker cannot go stale silently.
    """
    path = result_path(name)
    text = text if text.endswith("\n") else text + "\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    updated = []
    for document in documents:
        if not document.exists():
            continue
        content = document.read_text()
        if start not in content or end not in content:
            continue
        head, rest = content.split(start, 1)
        _, tail = rest.split(end, 1)
        document.write_text(f"{head}{start}\n{text}{end}{tail}")
        updated.append(document)
    if not updated:
        names = ", ".join(os.path.relpath(d, ROOT) for d in documents)
        raise ValueError(f"Expected the markers {start} and {end} in one of {names}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return updated
