"""The `keras-seqcells` command line: train, evaluate and use the task models.

Examples:

    keras-seqcells train text-classification --cell gru --epochs 5
    keras-seqcells evaluate text-classification
    keras-seqcells predict text-classification "a gorgeous, witty film"
"""

import argparse
import dataclasses
import json
import pathlib
import sys

import keras

from keras_seqcells.tasks import CELL_LAYERS, TASKS, TrainSettings, get_task

DEFAULT_RUNS = pathlib.Path("runs")


def _default_model(task):
    return DEFAULT_RUNS / task / "model.keras"


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-seqcells",
        description="Train, evaluate and use recurrent models built from exact SimpleRNN, "
        "LSTM and GRU cells.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    task_option = {
        "action": "append",
        "default": [],
        "metavar": "KEY=VALUE",
        "help": "a task option, e.g. window=30 or mode=many_to_many (repeatable)",
    }
    tasks = sorted(TASKS)

    train = commands.add_parser("train", help="train a task's model on its data")
    train.add_argument("task", choices=tasks)
    train.add_argument("--task-option", **task_option)
    # Options left unset take the task's recommended settings.
    train.add_argument("--cell", choices=sorted(CELL_LAYERS))
    train.add_argument("--units", type=int)
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--learning-rate", type=float)
    clipping = train.add_mutually_exclusive_group()
    clipping.add_argument(
        "--clipnorm",
        type=float,
        help=f"clip gradients to this global norm (default: {TrainSettings.clipnorm})",
    )
    clipping.add_argument("--no-clip", action="store_true", help="turn gradient clipping off")
    train.add_argument("--clipvalue", type=float, default=None)
    train.add_argument("--seed", type=int)
    train.add_argument("--patience", type=int)
    train.add_argument("--source", help="data set name or path (default: the shipped data)")
    train.add_argument("--limit", type=int, help="use only the first N examples per split")
    train.add_argument("--output-dir", help="default: runs/<task>")
    train.add_argument("--quiet", action="store_true", help="a line per epoch, no progress bar")

    evaluate = commands.add_parser("evaluate", help="held-out metrics of a saved model")
    evaluate.add_argument("task", choices=tasks)
    evaluate.add_argument("--task-option", **task_option)
    evaluate.add_argument("--model", help="default: runs/<task>/model.keras")
    evaluate.add_argument("--source")
    evaluate.add_argument("--seed", type=int, default=TrainSettings.seed)
    evaluate.add_argument("--limit", type=int)

    predict = commands.add_parser("predict", help="run a saved model on raw inputs")
    predict.add_argument("task", choices=tasks)
    predict.add_argument("--task-option", **task_option)
    predict.add_argument("inputs", nargs="+")
    predict.add_argument("--model", help="default: runs/<task>/model.keras")
    return parser


def _task_options(pairs):
    """Parses `KEY=VALUE` pairs; values are JSON (numbers, true, null...) or plain strings."""
    options = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ValueError(f"Expected `--task-option` as KEY=VALUE. Received: {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _format_metrics(metrics):
    return ", ".join(
        f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}"
        for name, value in metrics.items()
    )


def _print_results(task, metrics, baselines):
    rows = [("model", metrics), *baselines.items()]
    width = max(len(name) for name, _ in rows)
    print(f"held-out {task.metric} (test split):")
    for name, values in rows:
        print(f"  {name:<{width}}  {_format_metrics(values)}")


def load_model(path):
    """Loads a `.keras` model in safe mode, with a clear error if it is missing."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Expected `--model` to be a saved .keras file. Received: --model={path} "
            "(not found; train one first with `keras-seqcells train`)"
        )
    return keras.saving.load_model(path, safe_mode=True)


def _train(args):
    task = get_task(args.task, **_task_options(args.task_option))
    settings = task.settings(
        cell=args.cell,
        units=args.units,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        clipnorm=args.clipnorm,
        clipvalue=args.clipvalue,
        seed=args.seed,
        patience=args.patience,
        output_dir=args.output_dir or str(DEFAULT_RUNS / args.task),
        verbose=2 if args.quiet else 1,
    )
    if args.no_clip:
        settings = dataclasses.replace(settings, clipnorm=None)
    result = task.train(settings, source=args.source, limit=args.limit)
    _print_results(task, result.metrics, result.baselines)
    output_dir = pathlib.Path(settings.output_dir)
    print(f"trained {len(result.history['loss'])} epoch(s) in {result.seconds:.1f}s")
    print(f"model: {result.model_path}")
    print(f"learning curve: {output_dir / 'learning_curve.png'}")
    print(f"TensorBoard logs: {output_dir / 'logs'}")


def _evaluate(args):
    task = get_task(args.task, **_task_options(args.task_option))
    model = load_model(args.model or _default_model(args.task))
    data = task.load_data(args.source, seed=args.seed, limit=args.limit)
    _print_results(task, task.evaluate(model, data), task.baselines(data))


def _predict(args):
    task = get_task(args.task, **_task_options(args.task_option))
    model = load_model(args.model or _default_model(args.task))
    for text, prediction in zip(args.inputs, task.predict(model, args.inputs), strict=True):
        print(json.dumps({"input": text, "prediction": prediction}))


COMMANDS = {"train": _train, "evaluate": _evaluate, "predict": _predict}


def main(argv=None):
    args = _build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"keras-seqcells {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
