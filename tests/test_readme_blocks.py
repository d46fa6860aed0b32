"""Every generated block of the documentation equals its committed benchmark output."""

import json

import pytest

from benchmarks import readme_blocks


def _all_blocks():
    found = []
    for document in readme_blocks.DOCUMENTS:
        if document.exists():
            marked = readme_blocks.blocks(document).items()
            found.extend((document, name, text) for name, text in marked)
    return found


@pytest.mark.parametrize(
    "document,name,text",
    _all_blocks(),
    ids=lambda value: value.name if hasattr(value, "name") else None,
)
def test_block_equals_committed_output(document, name, text):
    path = readme_blocks.result_path(name)
    assert path.exists(), f"{document.name} block {name!r} has no committed {path}"
    assert text == path.read_text(), (
        f"{document.name} block {name!r} differs from {path}; rerun the benchmark that writes it"
    )


def test_write_block_updates_document_and_result(tmp_path, monkeypatch):
    document = tmp_path / "README.md"
    document.write_text("intro\n<!-- demo:start -->\nold\n<!-- demo:end -->\noutro\n")
    monkeypatch.setattr(readme_blocks, "RESULTS", tmp_path / "results")
    readme_blocks.write_block("demo", "new table", documents=(document,))
    expected = "intro\n<!-- demo:start -->\nnew table\n<!-- demo:end -->\noutro\n"
    assert document.read_text() == expected
    assert (tmp_path / "results" / "demo.md").read_text() == "new table\n"
    assert readme_blocks.blocks(document) == {"demo": "new table\n"}


def test_write_block_refuses_unmarked_and_bad_names(tmp_path, monkeypatch):
    document = tmp_path / "README.md"
    document.write_text("no markers\n")
    monkeypatch.setattr(readme_blocks, "RESULTS", tmp_path / "results")
    with pytest.raises(ValueError, match="Expected the markers <!-- demo:start -->"):
        readme_blocks.write_block("demo", "text", documents=(document,))
    assert not (tmp_path / "results").exists()
    with pytest.raises(ValueError, match="Received: name='Bad Name'"):
        readme_blocks.write_block("Bad Name", "text", documents=(document,))


def test_bfloat16_task_claims_match_the_committed_results():
    """The README's sentence on bfloat16 task metrics, and the block's summary rows,
    are what the committed per-seed results give."""
    from benchmarks import bfloat16_tasks

    saved = json.loads(bfloat16_tasks.RESULTS_JSON.read_text())
    results = saved["tasks"]
    assert len(saved["seeds"]) >= 3
    for result in results.values():
        assert [len(runs) for runs in result["runs"].values()] == [len(saved["seeds"])] * 2
    block = readme_blocks.result_path("bfloat16-tasks").read_text()
    for row in bfloat16_tasks.summary_rows(results):
        assert row in block.splitlines()
    readme = " ".join((readme_blocks.ROOT / "README.md").read_text().split())
    assert bfloat16_tasks.conclusion(results) in readme
