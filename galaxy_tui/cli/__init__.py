"""The `galaxy-tui` entry point: the workbench UI, and headless subcommands for scripts and SSH.

Imports stay inside the handlers so `--help` answers at once and torch never loads here.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

from galaxy_tui.errors import GalaxyError, storage_problem


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e7:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1")
    return int(text)


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 4096:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"{text!r} is not a size in MB above 0 and at most 4096")
    return value


def _pixels(text: str) -> int | None:
    """"4096x4096" or a pixel count; 0: no limit."""
    width, _, height = text.lower().partition("x")
    if width.isdigit() and (height.isdigit() if height else True):
        pixels = int(width) * int(height or 1)
        if pixels == 0:
            return None
        if pixels >= 64 * 64:
            return pixels
    raise argparse.ArgumentTypeError(f"{text!r} is not a pixel limit such as 4096x4096 (at least 64x64; 0: none)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="galaxy-tui",
        description="Train galaxy-morphology classifiers from the terminal. With no command, opens the workbench.")
    parser.add_argument("--workspace", type=Path, default=Path("."),
                        help="folder holding experiments.toml (default: the current folder)")
    commands = parser.add_subparsers(dest="command")

    datasets = commands.add_parser("datasets", help="list registered datasets with class counts")
    datasets.add_argument("--threshold", type=float, help="labelling threshold in (0.5, 1.0] (default 0.8)")
    datasets.add_argument("--min-classifications", type=int, help="minimum votes per galaxy (default 10)")
    datasets.add_argument("--max-artifact", type=float, help="maximum star/artifact fraction (default 0.5)")

    train = commands.add_parser("train", help="train an experiment (headless)")
    train.add_argument("experiment")
    follow = train.add_mutually_exclusive_group()
    follow.add_argument("--detach", action="store_true", help="return at once with the run id")
    follow.add_argument("--attached", action="store_true",
                        help="tie the run to this command: Ctrl-C, SIGTERM or SIGHUP stop it cleanly (checkpointed, "
                             "resumable; exit 3); without it they end only the following, and the run goes on")
    choice = train.add_mutually_exclusive_group()
    choice.add_argument("--resume", action="store_true", help="continue the latest run from its last checkpoint")
    choice.add_argument("--restart", action="store_true", help="start a new run from scratch")
    choice.add_argument("--skip", action="store_true", help="evaluate the best checkpoint; no training")
    train.add_argument("--devices", type=_count, help="number of GPUs (torchrun + DDP)")
    train.add_argument("--executor", choices=("local", "slurm"),
                       help="run here, or as a Slurm job ([workspace.slurm]); default: experiments.toml's")

    runs = commands.add_parser("runs", help="list runs with their state")
    runs.add_argument("--filter", default="", help="as `/` in the app: text state:finished exp:NAME #tag acc>0.9")
    runs.add_argument("--json", action="store_true", help="a JSON array, one object per run (for scripts)")
    stop = commands.add_parser("stop", help="stop a run (it checkpoints and can be resumed)")
    stop.add_argument("run")
    stop.add_argument("--wait", type=_seconds, default=300.0, metavar="SECONDS",
                      help="return once its processes have exited, waiting at most this long (default 300; 0: "
                           "return at once)")
    show = commands.add_parser("show", help="print a run's summary, confusion matrix and curves")
    show.add_argument("run")
    show.add_argument("--json", action="store_true", help="the run's state and results/metrics.json as JSON")
    show.add_argument("--answer", help="vote-fraction runs: the answer to plot predicted vs true (a column of "
                                       "predictions.csv without true_/pred_, e.g. Class1.1); default the first")
    export = commands.add_parser("export-metrics", help="runs' curves and final metrics as one CSV")
    export.add_argument("runs", nargs="+", metavar="RUN")
    export.add_argument("-o", "--output", type=Path, help="write the CSV here (default: standard output)")
    diff = commands.add_parser("diff", help="what changed in the configuration between two runs")
    diff.add_argument("first", metavar="RUN")
    diff.add_argument("second", metavar="RUN")
    evaluate = commands.add_parser("evaluate", help="evaluate a run's best checkpoint again (e.g. with --tta)")
    evaluate.add_argument("run")
    evaluate.add_argument("--tta", action="store_true",
                          help="also average each galaxy's prediction over its 8 flips and quarter turns")
    evaluate.add_argument("--detach", action="store_true", help="return at once")
    evaluate.add_argument("--again", action="store_true", help="evaluate even where the figure asked for is measured")
    boost = commands.add_parser("boost", help="gradient boosting on a finished run's penultimate-layer features")
    boost.add_argument("run")
    boost.add_argument("--booster", default="histgb", choices=("histgb", "lightgbm"),
                       help="scikit-learn's HistGradientBoosting (default) or LightGBM (extra `boost`)")
    boost.add_argument("--detach", action="store_true", help="return at once")
    comparison = commands.add_parser("compare", help="runs side by side, grouped by dataset, labelling and split")
    comparison.add_argument("runs", nargs="+", metavar="RUN")
    comparison.add_argument("--csv", type=Path, help="also write the table as CSV here")
    ensemble = commands.add_parser("ensemble", help="combine finished runs' saved probabilities (or vote "
                                                    "fractions) into an ensemble")
    ensemble.add_argument("runs", nargs="+", metavar="RUN")
    ensemble.add_argument("--weights", default="equal",
                          choices=("equal", "val-accuracy", "inverse-val-mae", "inverse-val-rmse"),
                          help="equal (default), or by validation accuracy (classification only), or by the "
                               "inverse of the validation MAE or RMSE")
    predict = commands.add_parser("predict", help="classify image files, folders or a dataset's galaxies with a "
                                                  "finished run; writes a CSV")
    predict.add_argument("run")
    predict.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="image files or folders (recursive)")
    predict.add_argument("--dataset", metavar="NAME", help="a registered dataset's galaxies instead of files")
    which = predict.add_mutually_exclusive_group()
    which.add_argument("--unlabelled", action="store_true",
                       help="with --dataset: only the galaxies the run's labelling rule left without a label")
    which.add_argument("--all", action="store_true", help="with --dataset: every galaxy (the default)")
    predict.add_argument("--out", type=Path, help="the CSV to write (default predictions-RUN.csv here)")
    predict.add_argument("--tta", action="store_true",
                         help="average over the 8 flips and quarter turns; their spread in tta_spread")
    predict.add_argument("--features", action="store_true",
                         help="also write the penultimate layer per galaxy (OUT.features.npy)")
    predict.add_argument("--batch", type=_count, default=64, help="galaxies per batch (default 64)")
    predict.add_argument("--device", help="cuda, cuda:1 or cpu (default: the GPU when there is one)")
    exporting = commands.add_parser("export", help="a finished run's model as TorchScript or ONNX, with a JSON of "
                                                   "its preprocessing and outputs, checked against PyTorch")
    exporting.add_argument("run")
    exporting.add_argument("--format", default="torchscript", choices=("torchscript", "onnx"))
    exporting.add_argument("--out", type=Path, help="the file to write (default RUN.pt or RUN.onnx here)")
    exporting.add_argument("--check", nargs="+", type=Path, default=[], metavar="PATH",
                           help="images to check parity on (default: the run's own test galaxies)")
    serving = commands.add_parser("serve", help="a finished run over HTTP: POST /classify, GET /health, GET /model "
                                                "(extra `serve`)")
    serving.add_argument("run")
    serving.add_argument("--host", default="127.0.0.1",
                         help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for every one)")
    serving.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    serving.add_argument("--max-upload-mb", type=_megabytes, default=10.0, help="largest image accepted (default 10)")
    serving.add_argument("--max-pixels", type=_pixels, default=4096 * 4096, metavar="WxH",
                         help="largest image decoded, from its header (default 4096x4096; a larger JPEG is decoded "
                              "at a reduced scale where that fits; 0: no limit)")
    serving.add_argument("--max-files", type=_count, default=16, help="most images per request (default 16)")
    serving.add_argument("--max-batch", type=_count, default=32,
                         help="most images per forward pass when requests arrive together (default 32)")
    serving.add_argument("--device", help="cuda, cuda:1 or cpu (default: the GPU when there is one)")
    recipes = commands.add_parser("recipe", help="write the experiments that reproduce a known result (the "
                                                  "original workflows') into experiments.toml; no name: list them")
    recipes.add_argument("name", nargs="?", help="the recipe (none: list them with their targets)")
    recipes.add_argument("--prefix", default="", help="put this before the experiments' names (when yours use them)")
    doctor = commands.add_parser("doctor", help="check this box's GPUs (or CPU) as training will use them: "
                                                "devices, precision, probe, throughput, OOM recovery, several "
                                                "devices, telemetry, a detached run")
    doctor.add_argument("--quick", action="store_true", help="fewer steps and checks (about a minute on a GPU)")
    doctor.add_argument("--devices", type=_count, help="ranks for the several-devices check (default: the GPUs; "
                                                       "without GPUs, 2 tries CPU ranks)")
    doctor.add_argument("--json", type=Path, metavar="FILE", help="also write the report, every figure, here")
    fetching = commands.add_parser("fetch", help="download a public dataset (checked, unpacked) and register it; "
                                                 "no name: list them")
    fetching.add_argument("name", nargs="?", help="the dataset (none: list them with their sources)")
    fetching.add_argument("--to", type=Path, help="the folder to put it in (default: data/ in the workspace)")
    fetching.add_argument("--mirror", help="a folder or URL holding the same files (for a box without internet)")
    fetching.add_argument("--detach", action="store_true",
                          help="fetch in the background (it outlives this shell; the Datasets pane shows it)")
    from galaxy_tui.cli.curation_commands import add_parsers
    add_parsers(commands, _count)
    return parser


def _run(args: argparse.Namespace, workspace: Path) -> int:
    if args.command is None:
        # The start builds tens of thousands of long-lived objects (modules, styles, widgets): no collection
        # walks them until the first paint, when the app freezes them and turns collection back on.
        gc.disable()
        from galaxy_tui.app.early_keys import keep_keys_from_the_terminal_probe, kept_keys
        keep_keys_from_the_terminal_probe()
        from galaxy_tui.app.main import run_app  # textual-image probes the terminal here
        typed = kept_keys()
        return run_app(workspace, typed)
    if args.command == "datasets":
        from galaxy_tui.cli.datasets_command import list_datasets
        return list_datasets(workspace, args.threshold, args.min_classifications, args.max_artifact)
    if args.command == "train":
        from galaxy_tui.cli.run_commands import train
        choice = "resume" if args.resume else "restart" if args.restart else "skip" if args.skip else None
        return train(workspace, args.experiment, args.detach, choice, args.devices, args.executor, args.attached)
    if args.command == "runs":
        from galaxy_tui.cli.run_commands import list_runs
        return list_runs(workspace, args.filter, args.json)
    if args.command == "stop":
        from galaxy_tui.cli.run_commands import stop
        return stop(workspace, args.run, args.wait)
    if args.command == "show":
        from galaxy_tui.cli.result_commands import show
        return show(workspace, args.run, args.answer, args.json)
    if args.command == "export-metrics":
        from galaxy_tui.cli.result_commands import export_metrics_csv
        return export_metrics_csv(workspace, args.runs, args.output)
    if args.command == "evaluate":
        from galaxy_tui.cli.run_commands import evaluate
        return evaluate(workspace, args.run, args.tta, args.detach, args.again)
    if args.command == "boost":
        from galaxy_tui.cli.run_commands import boost
        return boost(workspace, args.run, args.booster, args.detach)
    if args.command == "compare":
        from galaxy_tui.cli.result_commands import compare
        return compare(workspace, args.runs, args.csv)
    if args.command == "ensemble":
        from galaxy_tui.cli.result_commands import ensemble
        return ensemble(workspace, args.runs, args.weights)
    if args.command == "predict":
        from galaxy_tui.cli.predict_command import predict
        if (args.unlabelled or args.all) and args.dataset is None:
            raise GalaxyError("--unlabelled and --all choose a dataset's galaxies: add --dataset NAME.")
        return predict(workspace, args.run, args.paths, args.dataset, args.unlabelled, args.out, args.tta,
                       args.features, args.batch, args.device)
    if args.command == "export":
        from galaxy_tui.cli.export_command import export
        return export(workspace, args.run, args.format, args.out, args.check)
    if args.command == "serve":
        from galaxy_tui.cli.serve_command import serve
        return serve(workspace, args.run, args.host, args.port, args.max_upload_mb, args.max_files,
                     args.max_batch, args.device, args.max_pixels)
    if args.command == "diff":
        from galaxy_tui.cli.result_commands import diff_runs
        return diff_runs(workspace, args.first, args.second)
    if args.command == "doctor":
        from galaxy_tui.cli.doctor_command import doctor
        return doctor(workspace, args.quick, args.devices, args.json)
    if args.command == "fetch":
        from galaxy_tui.cli.fetch_command import fetch_dataset
        return fetch_dataset(workspace, args.name, args.to, args.mirror, args.detach)
    if args.command == "recipe":
        from galaxy_tui.cli.recipe_command import write
        return write(workspace, args.name, args.prefix)
    from galaxy_tui.cli.curation_commands import run_command
    handled = run_command(args, workspace)
    return 0 if handled is None else handled


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    workspace: Path = args.workspace.expanduser().resolve()
    try:
        code = _run(args, workspace)
        sys.stdout.flush()  # inside the try: a closed pipe is said here, not at the interpreter's exit
        return code
    except GalaxyError as exc:
        print(f"galaxy-tui: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `galaxy-tui runs | head -1`: the reader has all it wanted
        _silence_stdout()
        return 141  # as a Unix tool ended by SIGPIPE
    except OSError as exc:
        problem = storage_problem(exc)
        if problem is None:
            raise
        print(f"galaxy-tui: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before a run started (the following says what a signal did to one)
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not raise into a closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
