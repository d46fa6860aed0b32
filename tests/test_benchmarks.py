"""The benchmark scripts: the speed benchmark end to end, the task table's rows."""

import csv
import json
import re

import pytest

from benchmarks import bfloat16, bfloat16_tasks, keras_own_tests, min_rnn, rnn, task_results
from keras_seqcells.tasks import Forecasting


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


def test_min_rnn_benchmark_table_has_every_layer_at_every_length():
    rows = min_rnn.measure(timesteps=(3, 5), rounds=1, batch=2, features=3, units=4, warmup=1)
    assert [(row["timesteps"], row["implementation"]) for row in rows] == [
        (t, name) for t in (3, 5) for name in min_rnn.IMPLEMENTATIONS
    ]
    assert all(row["seconds"] > 0 and row["ratio"] > 0 for row in rows)
    assert all(row["ratio"] == 1.0 for row in rows if row["implementation"] == min_rnn.REFERENCE)
    text = min_rnn.table(rows, "a test machine", "python -m benchmarks.min_rnn --quick")
    lines = text.splitlines()
    assert lines[2] == "| T | layer | ms / step | ratio |"
    assert sum(line.startswith("| 5 | ") for line in lines) == len(min_rnn.IMPLEMENTATIONS)
    assert "Load average (1 minute) during the run" in lines[0] and "at T = 5" in lines[-1]


def test_speed_results_and_readme_block_per_backend():
    results = rnn.ROOT / "benchmarks" / "results"
    assert rnn.default_out("tensorflow") == results
    assert rnn.default_out("torch") == results / "torch"
    assert rnn.default_out("jax") == results / "jax"
    assert rnn.readme_block("tensorflow") == "rnn"
    assert rnn.readme_block("torch") == "rnn-torch"


def test_training_step_flops_count_forward_and_backward_products():
    # GRU (3 gate blocks), B=2, T=3, D=32, H=4: per step (2, 32) @ (32, 12) and
    # (2, 4) @ (4, 12), then the head (2, 4) @ (4, 1); backward twice the forward.
    forward = 3 * (2 * 2 * 32 * 12 + 2 * 2 * 4 * 12) + 2 * 2 * 4 * 1
    assert rnn.training_step_flops(2, 3, 32, 4, 3) == 3 * forward


def test_peer_table_compares_ours_with_the_faster_peer():
    pytest.importorskip("torch")
    rows, run = rnn.measure_peers(
        ["GRU"],
        units=[4],
        rounds=1,
        train_batch=2,
        infer_batches=(1, 2),
        timesteps=3,
        calls_at_batch_1=1,
        peak_size=64,
    )
    assert run["peer_threads"] == {"torch": rnn.tensorflow_threads()}
    assert run["peak_gflops"] > 0
    assert run["call_floor_ms"] > 0
    assert [row["measure"] for row in rows] == ["train", "infer B=1", "infer B=2"]
    table = rnn.peers_markdown(rows, run, "a test machine", note=", a note")
    lines = table.splitlines()
    assert lines[0].startswith("Measured on a test machine; PyTorch ")
    assert ", a note. PyTorch with `set_num_threads(" in lines[0]
    assert f"empty `tf.function` on the B=1 input takes {run['call_floor_ms']:.2f} ms" in lines[0]
    header = "| cell | measure | sizes | ours ms | Keras ms | PyTorch ms | ours / faster peer |"
    assert header in lines
    for row in rows:
        times = [row["ours_ms"], row["keras_ms"], row["torch_ms"]]
        assert all(value > 0 for value in times)
        assert row["ratio"] == row["ours_ms"] / min(row["keras_ms"], row["torch_ms"])
        cells = [f"{value:.2f}" for value in [*times, row["ratio"]]]
        assert f"| GRU | {row['measure']} | {row['sizes']} | {' | '.join(cells)} |" in lines
    train = rows[0]
    assert train["step_gflop"] == rnn.training_step_flops(2, 3, 32, 4, 3) / 1e9
    for key in ("ours", "keras", "torch"):
        share = train["step_gflop"] / (run["peak_gflops"] * train[f"{key}_ms"] / 1e3)
        assert train[f"{key}_of_peak"] == pytest.approx(share)
    shares = " | ".join(f"{train[f'{key}_of_peak']:.0%}" for key in ("ours", "keras", "torch"))
    assert f"| GRU | B=2 T=3 H=4 | {train['step_gflop']:.3f} | {shares} |" in lines


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--h", "512"], "Expected --h and --note with --peers only"),
        (["--peers", "jax"], "Expected --peers among torch. Received: peers=jax"),
        (["--peers", "torch", "--h", "0"], r"Expected hidden sizes >= 1. Received: h=\[0\]"),
        (
            ["--policy", "mixed_bfloat16", "--update-readme"],
            "Expected --policy without --update-readme",
        ),
    ],
)
def test_peer_options_refuse_what_they_cannot_run(argv, message, capsys):
    with pytest.raises(SystemExit):
        rnn.main(argv)
    assert re.search(message, capsys.readouterr().err)


def test_the_description_names_a_dtype_policy_given():
    assert "dtype policy" not in rnn.machine()
    assert rnn.machine("mixed_bfloat16").endswith("Keras dtype policy `mixed_bfloat16`")


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


def test_keras_own_tests_table_counts_each_outcome_and_groups_reasons(tmp_path):
    report = tmp_path / "report.xml"
    report.write_text(
        """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.test_keras_own_tests" name="test_keras_own[a_test.py::T::test_one]"/>
<testcase classname="tests.test_keras_own_tests" name="test_keras_own[a_test.py::T::test_two]">
<skipped type="pytest.xfail" message="reason: no such bias"/></testcase>
<testcase classname="tests.test_keras_own_tests" name="test_keras_own[a_test.py::T::test_three]">
<skipped type="pytest.xfail" message="reason: no such bias"/></testcase>
<testcase classname="tests.test_keras_own_tests" name="test_keras_own[b_test.py::U::test_four]">
<skipped type="pytest.skip" message="torch only"/></testcase>
<testcase classname="tests.test_keras_own_tests" name="test_keras_own[b_test.py::U::test_five]">
<failure message="AssertionError: 1 != 2"/></testcase>
</testsuite></testsuites>"""
    )
    table = keras_own_tests.table(keras_own_tests.outcomes(report))
    assert "| `a_test.py` | 3 | 1 | 2 | 0 | 0 |" in table
    assert "| `b_test.py` | 2 | 0 | 0 | 1 | 1 |" in table
    assert "- `a_test.py`, expected failure: `test_two`, `test_three`. no such bias" in table
    assert "- `b_test.py`, skipped: `test_four`. torch only" in table
    assert "- `b_test.py`, failed: `test_five`. AssertionError: 1 != 2" in table


def _text_result(name, model, majority, bag, chunk=None):
    return {
        "data set": name,
        "format": "CSV",
        "classes": 2,
        "sizes": [80, 10, 10],
        "median words": 12.0,
        "plan": {
            "sequence length": 30 if chunk is None else 128,
            "chunk length": chunk,
            "batch size": 16,
            "max epochs": 200,
            "patience": 20,
        },
        "model": {"accuracy": model[0], "macro_f1": model[1]},
        "majority class": {"accuracy": majority[0], "macro_f1": majority[1]},
        "bag-of-words": {"accuracy": bag[0], "macro_f1": bag[1]},
        "epochs": 30,
    }


def test_text_unseen_table_counts_wins_against_the_majority_class():
    from benchmarks import text_unseen

    text = text_unseen.table(
        [
            _text_result("wins", (0.8, 0.79), (0.5, 0.33), (0.82, 0.81)),
            _text_result("stuck at majority", (0.6, 0.375), (0.6, 0.375), (0.7, 0.65), chunk=64),
        ],
        seed=0,
    )
    assert (
        "| wins | CSV | 2 | 80/10/10 | 12 | 30 tokens whole; batch 16, ≤ 200 epochs, patience 20 "
        "| 0.800 / 0.790 | 0.500 / 0.330 | 0.820 / 0.810 | -0.020 |"
    ) in text
    assert "| 128 tokens in chunks of 64; batch 16" in text
    assert "beats the majority class (in accuracy and macro-F1) on 1 of 2 sets" in text
    assert "within 0.05 of the bag-of-words baseline's on 1 of 2 (at worst -0.275)" in text


def test_text_tuning_table_shows_both_defaults_and_a_shared_run_once():
    from benchmarks import text_tuning

    earlier = _text_result("small", (0.6, 0.375), (0.6, 0.375), (0.9, 0.9))
    current = _text_result("small", (0.9, 0.88), (0.6, 0.375), (0.9, 0.9), chunk=64)
    row = {**earlier, "earlier": earlier, "current": current}
    text = text_tuning.table([row], seed=0)
    assert "| small | 80/10/10, median 12 words | earlier | 30 tokens whole;" in text
    assert "| 30 | 0.600 / 0.375 | 0.600 / 0.375 | 0.900 / 0.900 | -0.525 |" in text
    assert "| current | 128 tokens in chunks of 64;" in text
    same = {**row, "current": {**earlier, "same as": "earlier"}}
    assert "| current (same as earlier) | 30 tokens whole;" in text_tuning.table([same], seed=0)


def test_unseen_tagging_corpora_say_how_to_install_them():
    from benchmarks import tagging_unseen

    with pytest.raises(SystemExit, match=r"keras-seqcells\[benchmarks\]"):
        tagging_unseen.corpus_path("no_such_corpus_package", "data.txt")


def test_forecast_table_counts_each_role_and_names_the_unseen_misses(tmp_path, monkeypatch):
    from benchmarks import forecast_unseen

    monkeypatch.setattr(forecast_unseen, "TUNING", ("a", "d", "e"))
    monkeypatch.setattr(forecast_unseen, "UNSEEN", ("b", "c"))
    rows = [
        "| tuned | tuning | 100 | none | 12 | 24, 6, season | 1 | 9 | 20 | 10 | +10.0% | "
        "beats both |",
        "| tied | tuning | 100 | none | none | 30, 1, last | 0 | 20 | 20 | — | -0.0% | "
        "ties persistence (kept its baseline start) |",
        "| yearly | tuning | 100 | none | none | 30, 1, last | 1 | 9 | 10 | — | +10.0% | "
        "beats persistence (no season) |",
        "| won | unseen | 100 | none | 4 | 8, 2, season | 0.5 | 9 | 20 | 10 | +10.0% | "
        "beats both |",
        "| lost | unseen | 100 | none | 4 | 8, 2, season | 1 | 11 | 20 | 10 | -10.0% | "
        "**worse than seasonal naive** |",
    ]
    text = forecast_unseen.summary(rows, "2 CPU cores")
    assert "beats its baselines on 2 of 3 tuning and 1 of 2 unseen series" in text
    assert (
        "missed on 1 of the 3 tuning series: tied (ties persistence (kept its baseline start), "
        "gain -0.0%)." in text
    )
    assert (
        "missed on 1 of the 2 unseen series: lost (worse than seasonal naive, gain -10.0%)." in text
    )
    assert text.endswith(rows[-1])
    written = {}
    monkeypatch.setattr(forecast_unseen, "write_block", written.__setitem__)
    (tmp_path / "rows.md").write_text("\n".join(rows) + "\n")
    forecast_unseen.main(["--from-rows", str(tmp_path / "rows.md")])  # no training
    assert written[forecast_unseen.BLOCK].endswith("\n".join(rows))


def test_tagging_table_reads_gold_columns_and_rebuilds_from_finished_runs(tmp_path, monkeypatch):
    import json

    from benchmarks import tagging_unseen

    # Token, gold tag, predicted tag: the gold tags lose their `B-`.
    source = tmp_path / "test_output.txt"
    source.write_text("tiếp cận\tB-V\tB-N\n.\tB-CH\tB-CH\n\nGo\tB-V\tB-V\n\n" * 10)
    gold = tagging_unseen.gold_tag_file(source, 1, tmp_path)
    assert gold.read_text().startswith("tiếp_cận\tV\n.\tCH\n\nGo\tV\n\n")
    corpus = ("Tiny", "unseen", "tiny-package", "test_output.txt", "`tiny-package` 1.0")
    monkeypatch.setattr(tagging_unseen, "CORPORA", (corpus,))
    monkeypatch.setattr(tagging_unseen, "GOLD_COLUMN", {"tiny-package": 1})
    monkeypatch.setattr(tagging_unseen, "corpus_path", lambda distribution, name: source)
    run_dir = tmp_path / "runs" / "test_output"
    run_dir.mkdir(parents=True)
    summary = {
        "metrics": {"accuracy": 0.9, "test_tokens": 6, "test_sentences": 4},
        "baselines": {"most frequent tag per word": {"accuracy": 0.95}},
        "epochs_run": 3,
        "train_seconds": 1.0,
    }
    (run_dir / "metrics.json").write_text(json.dumps(summary))
    rows, losses = tagging_unseen.run(tmp_path / "runs", "gru", tmp_path, reuse=True)  # no training
    assert rows == [
        "| Tiny | unseen | `tiny-package` 1.0 | 14 / 2 / 4 | 2 | 0.9000 vs 0.9500 | – | 3 | 1 s |"
    ]
    assert losses == ["Tiny (unseen)"]


def test_bfloat16_benchmark_times_both_policies_of_each_cell():
    rows = bfloat16.measure(["GRU", "LSTM"], [3], repeats=1)
    assert [(row["cell"], row["units"]) for row in rows] == [("GRU", 3), ("LSTM", 3)]
    for row in rows:
        assert row["float32"] > 0 and row["mixed_bfloat16"] > 0
        assert row["ratio"] == row["mixed_bfloat16"] / row["float32"]
    text = bfloat16.table(rows, "a test machine", repeats=1)
    assert "| GRU | 3 |" in text and "ratio = `mixed_bfloat16` time / float32 time" in text
    with pytest.raises(SystemExit):
        bfloat16.main(["--cells", "QRNN"])
    model = bfloat16.training_model("LSTM", 3, "mixed_bfloat16")
    recurrent = model.layers[0]
    assert recurrent.compute_dtype == "bfloat16" and recurrent.variable_dtype == "float32"


def _policy_runs(metrics, seconds):
    return [
        {"seed": seed, "metric": metric, "seconds": seconds, "epochs": 2, "load": 1.0}
        for seed, metric in enumerate(metrics)
    ]


def test_bfloat16_tasks_compare_the_difference_of_means_with_the_float32_range():
    results = {
        "text-classification": {
            "metric": "accuracy",
            "description": "rt-polarity",
            "settings": {"units": 256, "epochs": 2},
            "runs": {
                "float32": _policy_runs([0.70, 0.74, 0.72], 10.0),
                "mixed_bfloat16": _policy_runs([0.71, 0.73, 0.75], 5.0),
            },
        },
        "forecasting": {
            "metric": "mae",
            "description": "temperatures",
            "settings": {"units": 512, "epochs": 2},
            "runs": {
                "float32": _policy_runs([2.00, 2.01, 2.02], 8.0),
                "mixed_bfloat16": _policy_runs([2.30, 2.31, 2.32], 10.0),
            },
        },
    }
    text = bfloat16_tasks.comparison(results["text-classification"])
    assert text["difference"] == pytest.approx(0.01)
    assert text["ranges"]["float32"] == pytest.approx(0.04)
    assert text["within_noise"] and text["speedup"] == pytest.approx(2.0)
    forecast = bfloat16_tasks.comparison(results["forecasting"])
    assert not forecast["within_noise"] and forecast["speedup"] == pytest.approx(0.8)
    table = bfloat16_tasks.table(results, "a test machine", [0, 1, 2])
    assert "| text-classification | +0.0100 | 0.0400 | yes | 2.00x | 2.00x, 2.00x, 2.00x |" in table
    assert "| forecasting | +0.3000 | 0.0200 | no | 0.80x | 0.80x, 0.80x, 0.80x |" in table
    assert bfloat16_tasks.conclusion(results).startswith(
        "Held-out task metrics under `mixed_bfloat16` equal float32's within seed noise on "
        "some tasks only: text-classification accuracy 0.730 against 0.720 (float32 seeds' "
        "range 0.040), training 2.00x as fast (2.00x to 2.00x seed by seed)"
    )


def test_bfloat16_tasks_train_each_seed_under_both_policies(tmp_path, monkeypatch):
    tiny = {
        "task": Forecasting,
        "options": {"window": 8, "horizon": 2, "min_epoch_windows": 1},
        "description": "tiny",
        "settings": {"cell": "gru", "units": 4, "epochs": 1},
    }
    monkeypatch.setattr(bfloat16_tasks, "TASKS", {"forecasting": tiny})
    results = bfloat16_tasks.measure(["forecasting"], [0], tmp_path)
    runs = results["forecasting"]["runs"]
    assert set(runs) == {"float32", "mixed_bfloat16"}
    for policy, (run,) in runs.items():
        summary = json.loads(
            (tmp_path / "forecasting" / f"{policy}-seed-0" / "metrics.json").read_text()
        )
        assert summary["settings"]["dtype_policy"] == policy
        assert run["epochs"] == 1 and run["metric"] == summary["metrics"]["mae"]
    with pytest.raises(SystemExit):
        bfloat16_tasks.main(["--tasks", "nope"])
