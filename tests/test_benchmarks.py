"""The benchmark scripts: the speed benchmark end to end, the task table's rows."""

import csv

from benchmarks import rnn, task_results


def test_quick_benchmark_writes_results(tmp_path):
    rnn.main(
        ["--quick", "--repeats", "1", "--cells", "SimpleRNN", "--no-memory", "--out", str(tmp_path)]
    )
    table = (tmp_path / "rnn.md").read_text()
    for measure in ("train", "infer B=1", "infer B=256", "T 100", "H 256"):
        assert f"| SimpleRNN | {measure} |" in table
    with open(tmp_path / "rnn.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(float(row["ratio"]) > 0 for row in rows)
    peak_rows = [row for row in rows if row["peak_gflops"]]
    assert {row["measure"] for row in peak_rows} == {"infer B=1", "infer B=256", "H 64", "H 256"}
    assert (tmp_path / "rnn.png").stat().st_size > 0


def test_task_results_replace_only_the_rows_they_ran():
    old = ["| a | x | 1 |", "| a | y | 2 |", "| b | x | 3 |"]
    new = ["| a | y | 9 |", "| a | z | 8 |", "| c | x | 7 |"]
    assert task_results.merge_rows(old, new) == [
        "| a | x | 1 |",
        "| a | y | 9 |",
        "| a | z | 8 |",
        "| b | x | 3 |",
        "| c | x | 7 |",
    ]
