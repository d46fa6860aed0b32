"""`benchmarks/deploy.py` on tiny sizes: every runtime's row, every column."""

import importlib.util
import re

from benchmarks import deploy


def _available(module):
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def test_tiny_deploy_benchmark_table_has_every_runtime_and_column(capsys):
    results = deploy.main(
        ["--units", "4", "--features", "3", "--timesteps", "3", "--repeats", "1", "--quick"]
    )
    text = capsys.readouterr().out
    assert re.match(r"Load average \(1 minute\) during the run: \d+\.\d on average", text)
    assert "| cell | runtime | step B=1 (ms) | T=3 B=1 (ms) | T=3 B=64 (ms) | file (KB) |" in text
    expected = ["SavedModel `serving_default` (`step`)", "SavedModel `serving_xla`"]
    litert = _available("keras_seqcells.litert") and _available("ai_edge_litert")
    if litert:
        expected += ["LiteRT float32", "LiteRT float16", "LiteRT int8"]
    else:
        assert "- LiteRT: not measured (" in text
    if _available("onnxruntime"):
        expected.append("onnxruntime")
    if _available("torch"):
        expected.append("PyTorch eager (`to_torch`)")
    for cell in deploy.CELLS:
        rows = [row for row in results if row["cell"] == cell]
        assert [row["runtime"] for row in rows] == expected
        for row in rows:
            line = f"| {cell} | {row['runtime']} |"
            (table_line,) = [item for item in text.splitlines() if item.startswith(line)]
            assert table_line.count("|") == 7
            has_step = row["runtime"] != "SavedModel `serving_xla`"
            assert (row["step B=1"] is not None) == has_step
            assert row["whole B=1"] > 0 and row["whole B=64"] > 0
            sizes = row["size"] if isinstance(row["size"], list) else [row["size"]]
            assert all(size > 0 for size in sizes)
