"""The `keras-seqcells` command line: train, evaluate and use the task models.

Examples:

    keras-seqcells train text-classification --cell gru --epochs 5
    keras-seqcells evaluate text-classification
    keras-seqcells predict text-classification "a gorgeous, witty film"
    keras-seqcells train next-word && keras-seqcells generate "the just man" --words 20
    keras-seqcells gates runs/text-classification/model.keras "a witty film" --output gates.png
    keras-seqcells gradients --recurrent-scale 3 --output gradients.png
    keras-seqcells gradients --timesteps 200 --init-steps 1500 --train-steps 0
    keras-seqcells gradients --model runs/text-classification/model.keras --input "a witty film"
    keras-seqcells export runs/tagging/model.keras saved_models/tagger
    keras-seqcells export runs/tagging/model.keras --name tagger --root /models
    keras-seqcells serve-check saved_models/tagger --model runs/tagging/model.keras
    keras-seqcells export runs/tagging/model.keras tagger.onnx --format onnx
    keras-seqcells export runs/tagging/model.keras tagger.tflite --format litert --quantize int8
        --sequence-length 40
    keras-seqcells serve-check tagger.onnx --model runs/tagging/model.keras
"""

import argparse
import dataclasses
import json
import pathlib
import sys
import zipfile

import keras

from keras_seqcells._checks import check_int_at_least, check_optional_positive_number
from keras_seqcells.tasks import (
    CELL_LAYERS,
    DTYPE_POLICIES,
    TASKS,
    NextWord,
    TrainSettings,
    get_task,
)
from keras_seqcells.tasks.next_word import generate

DEFAULT_RUNS = pathlib.Path("runs")


def _default_model(task):
    return DEFAULT_RUNS / task / "model.keras"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _build_parser():
    parser = _Parser(
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
    train.add_argument(
        "--dtype-policy",
        choices=DTYPE_POLICIES,
        help="Keras dtype policy to train under: mixed_bfloat16 or mixed_float16 compute in "
        "half precision with float32 weights and outputs (default: float32, or the policy "
        "of the run being resumed)",
    )
    train.add_argument(
        "--distribute",
        action="store_true",
        help="train data-parallel: MirroredStrategy over this machine's devices, or "
        "MultiWorkerMirroredStrategy when TF_CONFIG is set (see RELIABILITY.md)",
    )

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

    generate = commands.add_parser(
        "generate", help="continue a prompt with a saved next-word model (one-to-many)"
    )
    generate.add_argument("prompt")
    generate.add_argument("--words", type=int, default=20)
    generate.add_argument("--temperature", type=float, default=1.0)
    generate.add_argument("--top-k", type=int)
    generate.add_argument("--seed", type=int)
    generate.add_argument("--model", help="default: runs/next-word/model.keras")
    _add_diagnostic_parsers(commands)
    _add_export_parsers(commands)
    return parser


def _add_export_parsers(commands):
    from keras_seqcells.deploy import FORMATS, QUANTIZATIONS
    from keras_seqcells.serving.signatures import EXPORT_TASKS

    export = commands.add_parser(
        "export",
        help="write a saved model as the next SavedModel version for TF Serving, "
        "or as a LiteRT or ONNX file",
    )
    export.add_argument("model", help="a saved .keras model")
    export.add_argument(
        "path",
        nargs="?",
        help="the model's export folder, absolute or relative: saved_models/<name>, "
        "/models/<name> (or give --name); for litert and onnx the file (.tflite, .onnx)",
    )
    export.add_argument(
        "--format",
        choices=FORMATS,
        default="saved_model",
        help="default: %(default)s (TF Serving)",
    )
    export.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        help="LiteRT only: the weights' type (default: float32)",
    )
    export.add_argument(
        "--streaming",
        action="store_true",
        help="litert and onnx: the one-step form, the states as inputs and outputs",
    )
    export.add_argument(
        "--sequence-length",
        type=int,
        help="litert and onnx: the fixed number of steps of the whole-sequence form "
        "(LiteRT needs it where the model leaves it open)",
    )
    export.add_argument(
        "--batch-size", type=int, help="litert: the file's fixed batch size (default: 1)"
    )
    export.add_argument(
        "--name",
        help="the model's name, a folder under --root (one folder of letters, digits, "
        "'_', '.', '-'; never a path), instead of PATH",
    )
    export.add_argument(
        "--root", help="the folder holding the models named by --name (default: saved_models)"
    )
    export.add_argument("--version", type=int, help="default: one above the highest version")
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    export.add_argument(
        "--task", choices=EXPORT_TASKS, help="whose signatures (default: recognised)"
    )
    export.add_argument("--no-xla", action="store_true", help="leave out serving_xla")
    export.add_argument("--top", type=int, default=5, help="top_words of a next-word model")

    check = commands.add_parser(
        "serve-check",
        help="load an export with tf.compat.v1.saved_model.loader (not TF Serving itself), "
        "check its answers and request formats, and run saved_model_cli and a fresh "
        "tf.saved_model.load on it",
    )
    check.add_argument(
        "path",
        help="the export folder, e.g. saved_models/<name>, or a .tflite or .onnx file "
        "(loaded in a fresh python -I process with only its runtime)",
    )
    check.add_argument("--version", type=int, help="default: the newest version")
    check.add_argument("--model", help="a .keras model whose answers the export must give")
    check.add_argument(
        "--tolerance",
        type=float,
        help=".tflite and .onnx: largest difference from the model's answers "
        "(default: 1e-5 for float32, 1e-2 for float16, 1e-1 for int8 weights)",
    )
    check.add_argument(
        "--no-grpc", action="store_true", help="skip the gRPC PredictRequest round trip"
    )
    check.add_argument(
        "--no-fresh-process",
        action="store_true",
        help="skip saved_model_cli run and tf.saved_model.load in fresh python -I processes",
    )


def _add_diagnostic_parsers(commands):
    from keras_seqcells.diagnostics.adding import CELLS

    gates = commands.add_parser(
        "gates", help="heatmaps of every recurrent layer's gates over one input"
    )
    gates.add_argument(
        "model", help="a saved .keras model, e.g. runs/text-classification/model.keras"
    )
    gates.add_argument(
        "input",
        help="one input: a text, a prompt for a next-word model, or comma-separated numbers "
        "for a numeric model (a forecasting window)",
    )
    gates.add_argument(
        "--output", default="gates.png", help="the PNG to write (default: %(default)s)"
    )
    gates.add_argument(
        "--top",
        type=int,
        default=3,
        help="next words shown after each step of a next-word model (default: %(default)s)",
    )

    gradients = commands.add_parser(
        "gradients",
        help="gradient norms over time of SimpleRNN, LSTM and GRU on the adding problem, "
        "or of every recurrent layer of a saved model on one input",
    )
    gradients.add_argument("--output", default="gradients.png", help="default: %(default)s")
    gradients.add_argument(
        "--model",
        help="a saved .keras model: plot ||d output/dh_t|| of each of its recurrent layers "
        "(each direction of a bidirectional one) on --input instead of the adding problem",
    )
    gradients.add_argument(
        "--input", help="with --model: one input, a text or comma-separated numbers"
    )
    gradients.add_argument("--timesteps", type=int, default=100)
    gradients.add_argument("--units", type=int, default=16)
    gradients.add_argument("--examples", type=int, default=32, help="sequences averaged over")
    gradients.add_argument("--seed", type=int, default=0)
    gradients.add_argument(
        "--recurrent-scale",
        type=float,
        help="initialise recurrent kernels as scaled orthogonal matrices with this gain",
    )
    clip = gradients.add_mutually_exclusive_group()
    clip.add_argument(
        "--clipnorm",
        type=float,
        help="clipping of the comparison training run, by global norm (default: 1.0)",
    )
    clip.add_argument("--clipvalue", type=float, help="clipping of the comparison run, by value")
    gradients.add_argument(
        "--train-cell",
        default="simple_rnn",
        choices=sorted(CELLS),
        help="the cell of the short SGD training runs (default: %(default)s)",
    )
    gradients.add_argument(
        "--train-steps", type=int, default=20, help="SGD steps per training run (0: none)"
    )
    gradients.add_argument("--learning-rate", type=float, default=0.1)
    gradients.add_argument(
        "--init-steps",
        type=int,
        default=0,
        help="also train the adding model this many Adam steps from each gate-bias "
        "initialisation (LSTM forget bias 0, 1, chrono; GRU default, chrono) and plot "
        "gradient flow and training curves (default: 0, off)",
    )
    gradients.add_argument(
        "--init-output", default="initialisations.png", help="default: %(default)s"
    )


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
    # Nested reports (per-class tables, matrices) are printed on their own lines.
    return ", ".join(
        f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}"
        for name, value in metrics.items()
        if not isinstance(value, (dict, list))
    )


def _print_results(task, metrics, baselines):
    rows = [("model", metrics), *baselines.items()]
    width = max(len(name) for name, _ in rows)
    print(f"held-out {task.metric} (test split):")
    for name, values in rows:
        print(f"  {name:<{width}}  {_format_metrics(values)}")
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict):
        width = max(len(str(name)) for name in per_class)
        print("per class (test split):")
        for name, values in per_class.items():
            print(f"  {name:<{width}}  {_format_metrics(values)}")
    verdict = task.verdict(metrics, baselines)
    if verdict:
        print(verdict)


def load_model(path, argument="--model"):
    """Loads a `.keras` model in safe mode, with a clear error if it is missing or unusable.

    A truncated or corrupt file, a file that is not a Keras archive and a
    Keras archive of classes other than Keras's and keras_seqcells' (another
    library's, or custom code) are refused with a `ValueError` before or
    instead of loading; lambdas and pickled code are never deserialised.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Expected `{argument}` to be a saved .keras file. Received: {argument}={path} "
            "(not found; train one first with `keras-seqcells train`)"
        )
    expected = (
        f"Expected `{argument}` to be a .keras model saved by Keras. Received: {argument}={path}"
    )
    try:
        with zipfile.ZipFile(path) as archive:
            corrupt = archive.testzip()
            names = set(archive.namelist())
            metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
            config = json.loads(archive.read("config.json")) if "config.json" in names else {}
        metadata = metadata if isinstance(metadata, dict) else {}
        config = config if isinstance(config, dict) else {}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise ValueError(f"{expected} (not a readable zip archive: {error})") from None
    if corrupt is not None:
        raise ValueError(f"{expected} (corrupt member {corrupt!r})")
    if "config.json" not in names or "keras_version" not in metadata:
        raise ValueError(f"{expected} (no Keras config.json and metadata.json)")
    module = str(config.get("module"))
    if module.partition(".")[0] not in ("keras", "keras_seqcells"):
        raise ValueError(
            f"{expected} (its model class {config.get('class_name')!r} comes from module "
            f"{config.get('module')!r}, not from Keras or keras_seqcells)"
        )
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a foreign or damaged archive
        message = str(error).splitlines()[0] if str(error) else ""
        raise ValueError(f"{expected} ({type(error).__name__}: {message[:300]})") from None


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
        dtype_policy=args.dtype_policy,
    )
    if args.no_clip:
        settings = dataclasses.replace(settings, clipnorm=None)
    result = task.train(
        settings, source=args.source, limit=args.limit, strategy=_strategy(args.distribute)
    )
    _print_results(task, result.metrics, result.baselines)
    output_dir = pathlib.Path(settings.output_dir)
    print(f"trained {len(result.history['loss'])} epoch(s) in {result.seconds:.1f}s")
    print(f"model: {result.model_path}")
    print(f"learning curve: {output_dir / 'learning_curve.png'}")
    if (output_dir / "confusion_matrix.png").is_file():
        print(f"confusion matrix: {output_dir / 'confusion_matrix.png'}")
    if (output_dir / "forecast.png").exists():
        print(f"forecast plot: {output_dir / 'forecast.png'}")
    print(f"TensorBoard logs: {output_dir / 'logs'}")


def _strategy(distribute):
    if not distribute:
        return None
    import os

    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.MirroredStrategy()


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


def _gates(args):
    from keras_seqcells.diagnostics.gates import gate_view
    from keras_seqcells.diagnostics.plots import plot_gates

    model = load_model(args.model, argument="MODEL")
    view = gate_view(model, args.input, top=args.top)
    plot_gates(view, args.output)
    for item in view.traces:
        means = ", ".join(
            f"{gate} {float(values.mean()):+.3f}" for gate, values in item["gates"].items()
        )
        print(f"{item['name']} ({len(item['labels'])} steps): mean {means}")
    print(f"steps: {' '.join(view.labels)}")
    if view.next_words is not None:
        print("next words after each step:")
        for label, words in zip(view.labels, view.next_words, strict=True):
            print(f"  {label:<12} " + ", ".join(f"{word} {p:.3f}" for word, p in words))
    if view.values is not None:
        rows = (" ".join(f"{value:g}" for value in row) for row in view.values)
        print(f"input values: {', '.join(rows)}")
    print(f"gates: {args.output}")


def _model_gradients(args):
    import numpy as np

    from keras_seqcells.diagnostics.gates import inputs_from_text
    from keras_seqcells.diagnostics.gradients import gradient_flow
    from keras_seqcells.diagnostics.plots import plot_gradient_flow
    from keras_seqcells.diagnostics.trace import model_example, text_vectorizer

    if args.input is None:
        raise ValueError("Expected `--input` with `--model`. Received: --input=None")
    model = load_model(args.model)
    inputs = inputs_from_text(model, args.input)
    example = model_example(model, inputs)
    flows = gradient_flow(model, example)
    vectorizer = text_vectorizer(model)
    if vectorizer is not None and isinstance(inputs, str):
        # Leave out the trailing padding: masked, its steps reach nothing.
        ids = keras.ops.convert_to_numpy(vectorizer(example))[0]
        real = int(np.count_nonzero(ids))
        if 0 < real < len(ids) and not np.any(ids[real:]):
            flows = {
                label: {
                    key: value[:real] if np.ndim(value) else value for key, value in flow.items()
                }
                for label, flow in flows.items()
            }
            print(f"{real} tokens (the {len(ids) - real} padding steps are left out)")
    plot_gradient_flow(flows, args.output, f"d(sum of outputs)/dh_t, {model.name}")
    print(f"{model.name}: ||d(sum of outputs)/dh_t|| per recurrent layer, steps in input order")
    print("  layer                 steps  ||dL/dh_1||  ||dL/dh_T||")
    for label, flow in flows.items():
        print(f"  {label:<20}  {len(flow['h']):5d}  {flow['h'][0]:11.3g}  {flow['h'][-1]:11.3g}")
    print(f"gradients: {args.output}")


def _gradients(args):
    import numpy as np

    from keras_seqcells.diagnostics.long_range import compare_gradient_flow, short_training_run
    from keras_seqcells.diagnostics.plots import plot_gradient_flow

    if args.model is not None:
        _model_gradients(args)
        return
    for name in ("timesteps", "units", "examples"):
        check_int_at_least(f"--{name}", getattr(args, name), 2)
    for name in ("init_steps", "train_steps"):
        check_int_at_least("--" + name.replace("_", "-"), getattr(args, name), 0)
    for name in ("recurrent_scale", "clipnorm", "clipvalue", "learning_rate"):
        check_optional_positive_number("--" + name.replace("_", "-"), getattr(args, name))
    flows = compare_gradient_flow(
        args.timesteps, args.units, args.examples, args.seed, args.recurrent_scale
    )
    scale = "default" if args.recurrent_scale is None else f"gain {args.recurrent_scale:g}"
    plot_gradient_flow(
        flows,
        args.output,
        f"adding problem, T={args.timesteps}, at initialisation (recurrent init: {scale})",
    )
    print(f"adding problem, T={args.timesteps}, {args.units} units, recurrent init: {scale}")
    print("  cell          ||dL/dh_1||  ||dL/dh_T||  ||dL/dx_1|| / ||dL/dx_T||")
    for cell, flow in flows.items():
        ratio = flow["x"][0] / flow["x"][-1]
        print(f"  {cell:<12}  {flow['h'][0]:11.3g}  {flow['h'][-1]:11.3g}  {ratio:.3g}")
    print(f"gradients: {args.output}")
    if args.init_steps > 0:
        _initialisations(args)
    if args.train_steps == 0:
        return
    clipping = (
        {"clipvalue": args.clipvalue}
        if args.clipvalue is not None
        else {"clipnorm": args.clipnorm or 1.0}
    )
    print(
        f"{args.train_steps} SGD steps (learning rate {args.learning_rate:g}) on "
        f"{args.train_cell}, recurrent init: {scale}:"
    )
    clip_label = " ".join(f"{name} {value:g}" for name, value in clipping.items())
    for label, options in (("no clipping", {}), (clip_label, clipping)):
        run = short_training_run(
            args.train_cell,
            args.timesteps,
            args.units,
            args.recurrent_scale,
            steps=args.train_steps,
            learning_rate=args.learning_rate,
            seed=args.seed,
            **options,
        )
        print(
            f"  {label:<15} loss {run.losses[0]:.3g} -> {run.losses[-1]:.3g} "
            f"(max {np.nanmax(run.losses):.3g}), largest gradient norm "
            f"{max(run.gradient_norms):.3g}, largest |weight| {run.max_abs_weight:.3g}"
            f"{'  DIVERGED' if run.diverged else ''}"
        )


def _initialisations(args):
    from keras_seqcells.diagnostics.long_range import compare_initialisations
    from keras_seqcells.diagnostics.plots import plot_initialisations

    runs = compare_initialisations(
        timesteps=args.timesteps, units=args.units, steps=args.init_steps, seed=args.seed
    )
    plot_initialisations(
        runs,
        args.init_output,
        f"adding problem, T={args.timesteps}, {args.units} units, {args.init_steps} Adam steps",
    )
    print(f"{args.init_steps} Adam steps from each initialisation (same seed and batches):")
    print("  initialisation      loss: first  last  held-out  solved  ratio init -> trained")
    for label, run in runs.items():
        print(
            f"  {label:<18}  {run.losses[0]:11.3g}  {run.losses[-1]:.3g}  {run.test_loss:8.3g}"
            f"  {run.test_accuracy:6.0%}  {run.ratio_before:.2g} -> {run.ratio_after:.2g}"
        )
    print(f"initialisations: {args.init_output}")


def _generate(args):
    model = load_model(args.model or _default_model(NextWord.name))
    continuation = generate(
        model,
        args.prompt,
        words=args.words,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
    )
    print(f"{args.prompt} {continuation}")


def _export(args):
    from keras_seqcells.deploy import check_format_options, export_file
    from keras_seqcells.serving import export, model_folder
    from keras_seqcells.serving.saved_model import check_name

    check_format_options(args.format, args.quantize, args.streaming)
    if args.format == "saved_model" and (args.sequence_length or args.batch_size) is not None:
        raise ValueError(
            "Expected --sequence-length and --batch-size only with --format litert or onnx. "
            f"Received: sequence_length={args.sequence_length!r}, batch_size={args.batch_size!r}"
        )
    if args.format != "saved_model":
        given = {
            option: value
            for option, value in {
                "--name": args.name,
                "--root": args.root,
                "--version": args.version,
                "--task": args.task,
                "--no-xla": args.no_xla or None,
                "--top": None if args.top == 5 else args.top,
            }.items()
            if value is not None
        }
        if given or args.path is None:
            raise ValueError(
                f"Expected DEST (the file) and no SavedModel options with --format "
                f"{args.format}. Received: path={args.path!r}, {given}"
            )
        model = load_model(args.model, argument="MODEL")
        path = export_file(
            model,
            args.path,
            args.format,
            quantize=args.quantize,
            streaming=args.streaming,
            overwrite=args.overwrite,
            sequence_length=args.sequence_length,
            batch_size=args.batch_size,
        )
        print(f"exported: {path}")
        return
    if (args.path is None) == (args.name is None):
        raise ValueError(
            "Expected either PATH (the export folder) or --name NAME (a model under --root). "
            f"Received: path={args.path!r}, name={args.name!r}"
        )
    if args.root is not None and args.name is None:
        raise ValueError(
            "Expected --root only with --name (PATH is the whole folder). "
            f"Received: root={args.root!r}, path={args.path!r}"
        )
    folder = (
        check_name(args.path)
        if args.name is None
        else model_folder(args.root or "saved_models", args.name)
    )
    model = load_model(args.model, argument="MODEL")
    path = export(
        model,
        folder,
        version=args.version,
        task=args.task,
        overwrite=args.overwrite,
        xla=not args.no_xla,
        top=args.top,
    )
    print(f"exported: {path}")


def _serve_check(args):
    from keras_seqcells.deploy import check_deployed, detect_format
    from keras_seqcells.serving import serve_check

    format = detect_format(args.path)
    if format != "saved_model":
        given = [
            option
            for option, value in {
                "--version": args.version is not None,
                "--no-grpc": args.no_grpc,
                "--no-fresh-process": args.no_fresh_process,
            }.items()
            if value
        ]
        if given:
            raise ValueError(
                f"Expected no SavedModel options for a {format} file. Received: {given}"
            )
        model = load_model(args.model) if args.model else None
        for line in check_deployed(args.path, model=model, tolerance=args.tolerance):
            print(line)
        print("serve-check: OK")
        return
    if args.tolerance is not None:
        raise ValueError(
            "Expected --tolerance only for a .tflite or .onnx file. "
            f"Received: tolerance={args.tolerance!r}"
        )
    model = load_model(args.model) if args.model else None
    for line in serve_check(
        args.path,
        model=model,
        version=args.version,
        grpc=not args.no_grpc,
        fresh_process=not args.no_fresh_process,
    ):
        print(line)
    print("serve-check: OK")


COMMANDS = {
    "export": _export,
    "serve-check": _serve_check,
    "generate": _generate,
    "train": _train,
    "evaluate": _evaluate,
    "predict": _predict,
    "gates": _gates,
    "gradients": _gradients,
}


def main(argv=None):
    from keras_seqcells.deploy import DeployCheckError
    from keras_seqcells.serving import ServeCheckError

    args = _build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except (ValueError, TypeError, OSError, ImportError) as error:
        print(f"keras-seqcells {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (ServeCheckError, DeployCheckError) as error:
        print(f"keras-seqcells {args.command}: FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
