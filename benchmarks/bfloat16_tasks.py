"""Held-out task metrics and training time under `mixed_bfloat16` against float32.

Trains each task with the same settings (chosen before any bfloat16 run,
`TASKS`) under float32 and under `mixed_bfloat16`, for each seed; a seed
draws the weights, dropout and the batches' order (and the text task's
split), so each seed's two runs start alike and see the same data. The
two policies' runs of a seed follow each other, so that both see about the
same machine load. Early stopping waits as long as training
lasts (`patience` = `epochs`): every run trains every epoch, and the
training times compare like with like. Reports each run's held-out metric,
each policy's mean and range over the seeds, the difference of the means
against the float32 range (the seed noise), and the training time ratio.

Each run's `metrics.json` is kept in `--output-dir`; a run whose file is
already there is not trained again. The results go to
`benchmarks/results/bfloat16-tasks.json` and the README's `bfloat16-tasks`
block (with `--update-readme`).

    python -m benchmarks.bfloat16_tasks --update-readme  # ~25 minutes on 2 CPU cores
    python -m benchmarks.bfloat16_tasks --tasks forecasting --seeds 0
"""

import argparse
import json
import os
import pathlib
import statistics

from benchmarks.readme_blocks import RESULTS, load_sentence, write_block
from benchmarks.rnn import machine
from keras_seqcells.tasks import Forecasting, TextClassification, TrainSettings

POLICIES = ("float32", "mixed_bfloat16")
RESULTS_JSON = RESULTS / "bfloat16-tasks.json"

#: Each task's options and settings, chosen before any bfloat16 run from
#: float32 timings alone: recurrent layers large enough that their products
#: dominate a step (H=256 or 512), and few enough epochs that the whole run
#: takes about 25 minutes on 2 cores. Tagging is left out: one epoch of UD
#: English EWT at H=256 takes 1.5 to 2.5 minutes here, too long for three
#: seeds of both policies within that time.
TASKS = {
    "text-classification": {
        "task": TextClassification,
        "options": {},
        "description": "rt-polarity, bidirectional LSTM",
        "settings": {"cell": "lstm", "units": 256, "epochs": 3},
    },
    "forecasting": {
        "task": Forecasting,
        "options": {},
        "description": "daily-min-temperatures, LSTM",
        "settings": {"cell": "lstm", "units": 512, "epochs": 15},
    },
}
#: What every run shares.
COMMON_SETTINGS = {"batch_size": 64, "learning_rate": 1e-3}


def run(task_name, policy, seed, output_dir):
    """The `metrics.json` summary of one training run (trained unless already there)."""
    spec = TASKS[task_name]
    folder = pathlib.Path(output_dir) / task_name / f"{policy}-seed-{seed}"
    summary_path = folder / "metrics.json"
    if not summary_path.exists():
        settings = TrainSettings(
            **COMMON_SETTINGS,
            **spec["settings"],
            patience=spec["settings"]["epochs"],
            seed=seed,
            dtype_policy=policy,
            output_dir=str(folder),
            verbose=0,
        )
        spec["task"](**spec["options"]).train(settings)
        summary = json.loads(summary_path.read_text())
        summary["load"] = os.getloadavg()[0]
        summary_path.write_text(json.dumps(summary, indent=2))
    return json.loads(summary_path.read_text())


def measure(task_names, seeds, output_dir):
    """`{task: {"metric", "lower_is_better", "runs": {policy: [run, ...]}}}`, runs in seed order.

    A run is `{"seed", "metric", "seconds", "epochs", "load"}`.
    """
    results = {}
    for task_name in task_names:
        task_class = TASKS[task_name]["task"]
        runs = {policy: [] for policy in POLICIES}
        for seed in seeds:
            for policy in POLICIES:
                summary = run(task_name, policy, seed, output_dir)
                runs[policy].append(
                    {
                        "seed": seed,
                        "metric": summary["metrics"][task_class.metric],
                        "seconds": summary["train_seconds"],
                        "epochs": summary["epochs_run"],
                        "load": summary.get("load"),
                        # Forecasting only: 1 where the learnt correction was
                        # kept, 0 where the model fell back to its baseline.
                        "correction_scale": summary.get("correction_scale"),
                    }
                )
                print(
                    f"{task_name} seed {seed} {policy}: {task_class.metric} "
                    f"{runs[policy][-1]['metric']:.4f}, {summary['train_seconds']:.0f}s",
                    flush=True,
                )
        results[task_name] = {
            "metric": task_class.metric,
            "lower_is_better": task_class.lower_is_better,
            "description": TASKS[task_name]["description"],
            "settings": TASKS[task_name]["settings"],
            "runs": runs,
        }
    return results


def comparison(result):
    """Means, ranges, the difference of the means and the time ratio of one task's runs."""
    metrics = {policy: [r["metric"] for r in runs] for policy, runs in result["runs"].items()}
    means = {policy: statistics.fmean(values) for policy, values in metrics.items()}
    ranges = {policy: max(values) - min(values) for policy, values in metrics.items()}
    difference = means["mixed_bfloat16"] - means["float32"]
    seconds = {
        policy: sum(r["seconds"] for r in runs) / sum(r["epochs"] for r in runs)
        for policy, runs in result["runs"].items()
    }
    by_seed = [
        (f["seconds"] / f["epochs"]) / (b["seconds"] / b["epochs"])
        for f, b in zip(result["runs"]["float32"], result["runs"]["mixed_bfloat16"], strict=True)
    ]
    return {
        "speedups_by_seed": by_seed,
        "means": means,
        "ranges": ranges,
        "difference": difference,
        # Within seed noise: the means differ by no more than the float32
        # runs' own spread over the seeds.
        "within_noise": abs(difference) <= ranges["float32"],
        "speedup": seconds["float32"] / seconds["mixed_bfloat16"],
        "seconds_per_epoch": seconds,
    }


def conclusion(results):
    """The README's plain sentence on what the run found."""
    parts, noise = [], []
    for task_name, result in results.items():
        found = comparison(result)
        noise.append(found["within_noise"])
        parts.append(
            f"{task_name} {result['metric']} {found['means']['mixed_bfloat16']:.3f} against "
            f"{found['means']['float32']:.3f} (float32 seeds' range "
            f"{found['ranges']['float32']:.3f}), training {found['speedup']:.2f}x as fast "
            f"({min(found['speedups_by_seed']):.2f}x to {max(found['speedups_by_seed']):.2f}x "
            "seed by seed)"
        )
    if all(noise):
        verdict = "Held-out task metrics under `mixed_bfloat16` equal float32's within seed noise"
    elif not any(noise):
        verdict = "Held-out task metrics under `mixed_bfloat16` differ from float32's by more "
        verdict += "than seed noise"
    else:
        verdict = "Held-out task metrics under `mixed_bfloat16` equal float32's within seed "
        verdict += "noise on some tasks only"
    return f"{verdict}: {'; '.join(parts)} (`bfloat16-tasks` block)."


def summary_rows(results):
    """The table rows comparing the policies, one per task."""
    rows = []
    for task_name, result in results.items():
        found = comparison(result)
        rows.append(
            f"| {task_name} | {found['difference']:+.4f} | {found['ranges']['float32']:.4f} "
            f"| {'yes' if found['within_noise'] else 'no'} | {found['speedup']:.2f}x "
            f"| {', '.join(f'{value:.2f}x' for value in found['speedups_by_seed'])} |"
        )
    return rows


def table(results, description, seeds):
    loads = [r["load"] for result in results.values() for runs in result["runs"].values()
             for r in runs if r["load"] is not None]  # fmt: skip
    lines = [
        f"Measured by `python -m benchmarks.bfloat16_tasks --seeds {','.join(map(str, seeds))}` "
        f"on {description}. {load_sentence(loads or [0.0])}. Same settings for both policies "
        "(Adam, batch 64, learning rate 1e-3, every epoch trained, the weights of the best "
        "validation epoch kept); the seed draws the weights, dropout and the batches' order "
        "(and rt-polarity's split). "
        "Within noise: |difference of means| <= the float32 seeds' range (max - min). "
        "Speed-up: float32 training seconds per epoch / `mixed_bfloat16`'s, over all seeds "
        "and seed by seed (the two runs of a seed follow each other).",
        "",
        "| task | metric | policy | "
        + " | ".join(f"seed {seed}" for seed in seeds)
        + " | mean | range | s/epoch |",
        "| --- | --- | --- |" + " ---: |" * (len(seeds) + 3),
    ]
    for task_name, result in results.items():
        found = comparison(result)
        settings = result["settings"]
        label = (
            f"{task_name} ({result['description']}, H={settings['units']}, "
            f"{settings['epochs']} epochs)"
        )
        for policy, runs in result["runs"].items():
            values = " | ".join(f"{r['metric']:.4f}" for r in runs)
            lines.append(
                f"| {label} | {result['metric']} | {policy} | {values} "
                f"| {found['means'][policy]:.4f} | {found['ranges'][policy]:.4f} "
                f"| {found['seconds_per_epoch'][policy]:.1f} |"
            )
    lines += [
        "",
        "| task | difference of means | float32 range | within noise | speed-up "
        "| speed-up by seed |",
        "| --- | ---: | ---: | --- | ---: | ---: |",
    ]
    lines += summary_rows(results)
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated tasks")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--output-dir", default="runs/bfloat16_tasks")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    task_names = [name for name in args.tasks.split(",") if name]
    unknown = sorted(set(task_names) - set(TASKS))
    if unknown:
        parser.error(f"Expected tasks among {sorted(TASKS)}. Received: tasks={unknown}")
    seeds = [int(seed) for seed in args.seeds.split(",")]
    results = measure(task_names, seeds, args.output_dir)
    text = table(results, machine(), seeds)
    print(text)
    print(conclusion(results))
    if args.update_readme:
        write_block("bfloat16-tasks", text)
        RESULTS_JSON.write_text(json.dumps({"seeds": seeds, "tasks": results}, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
