"""The ``purenet`` command: train, inspect, plot, evaluate, predict.

Every failure the user can cause (a missing file, a bad config, a corrupt checkpoint) ends
with one ``purenet: error: ...`` line on stderr and a non-zero exit, never a traceback.
SIGINT and SIGTERM during ``train`` save a checkpoint and exit with 130 and 143, after a
line giving the exact command that resumes the run.
"""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import signal
import sys
import warnings
from typing import Any, Sequence

from purenet import __version__
from purenet.cli.readers import evaluate, inspect, plot, predict, rewind, show
from purenet.cli.sweep import SWEEP_HANDLERS, add_sweep_commands
from purenet.cli import upgrade as upgrade_command
from purenet.errors import CheckpointError, ExperimentError
from purenet.extend import import_pieces
from purenet.train.config import MIN_EPOCHS, optimizer_text

EXIT_ERROR = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Python's default would kill the process without a word."""

    signal_number = signal.SIGTERM


def _on_sigterm(number: int, frame: Any) -> None:
    raise Terminated("SIGTERM")


# --- train ----------------------------------------------------------------------------


def resume_command(prog: str, argv: Sequence[str]) -> str:
    """The command line that resumes the run ``argv`` started: --force off, --resume on."""
    args = [a for a in argv if a != "--force"]
    if "--resume" not in args:
        args.append("--resume")
    return f"{prog} {shlex.join(args)}"


def _integer(low: int) -> Any:
    """An argparse type: an integer >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
        return value
    return parse


def model_line(config: Any) -> str:
    """The network at a glance: sizes, activations, parameter count, dtype, threads."""
    arch = config.architecture
    return (f"model: {arch.describe()}, {arch.parameter_count:,} parameters, {config.dtype}, "
            f"{optimizer_text(config.optimizer)}, {config.threads} BLAS "
            f"thread{'s' if config.threads > 1 else ''}")


def _train(args: argparse.Namespace, prog: str, argv: Sequence[str]) -> int:
    from purenet.experiment.config import load_experiment
    from purenet.experiment.rundir import default_run_dir
    from purenet.experiment.runner import run_experiment

    overrides = list(args.set or ())
    experiment = load_experiment(args.config, overrides)
    run_dir = args.run_dir or default_run_dir(experiment)

    def announce(line: str) -> None:   # once the run directory is claimed
        print(line, flush=True)
        print(model_line(experiment.run), flush=True)

    try:
        summary = run_experiment(experiment, run_dir, resume=args.resume, force=args.force,
                                 epochs=args.epochs, seed=args.seed,
                                 checkpoint_every=args.checkpoint_every,
                                 progress=False if args.no_progress else None,
                                 announce=announce)
    except KeyboardInterrupt as interrupt:
        number = int(getattr(interrupt, "signal_number", signal.SIGINT))
        state = getattr(interrupt, "state", None)
        where = (f"stopped after step {state.step}; its checkpoint is in "
                 f"{os.path.join(run_dir, 'checkpoints')}" if state is not None
                 else "stopped; the newest checkpoint (if any) is kept")
        print(f"\npurenet: {signal.Signals(number).name} received: {where}", file=sys.stderr)
        print(f"purenet: to resume, run: {resume_command(prog, argv)}", file=sys.stderr,
              flush=True)
        return 128 + number
    show(summary)
    return 0


# --- the parser -----------------------------------------------------------------------


def build_parser(prog: str = "purenet") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, allow_abbrev=False, description=(
        "purenet: train dense networks from TOML experiment files, with bit-identical "
        "resumable checkpoints."))
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}")
    parser.add_argument("--import", dest="imports", action="append", default=[],
                        metavar="MODULE", help=(
                            "import MODULE (a module name, or a .py file) first, for the "
                            "activations, losses, initializers and transforms it registers; "
                            "repeat for more. Code reaches purenet only this way, never "
                            "from an experiment file or a checkpoint"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_run_commands(commands)
    add_sweep_commands(commands)
    upgrade_command.add_parser(commands)
    return parser


def _add_train(commands: Any) -> None:
    train = commands.add_parser("train", allow_abbrev=False, help="train an experiment file",
                                description="Train CONFIG.toml in a run directory.")
    train.add_argument("config", metavar="CONFIG", help="the experiment file (.toml)")
    train.add_argument("--run-dir", metavar="DIR", help="default: runs/<name> (the config's "
                       "name, or its file's stem)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in the run directory from its newest checkpoint "
                            "(with none there, it says so and trains from the start)")
    train.add_argument("--force", action="store_true",
                       help="delete the run already in the run directory (only one purenet "
                            "made) once the new run starts")
    train.add_argument("--epochs", type=_integer(MIN_EPOCHS), metavar="N", help="override epochs")
    train.add_argument("--seed", type=int, metavar="N", help="override seed")
    train.add_argument("--checkpoint-every", type=_integer(1), metavar="N",
                       help="checkpoint every N steps (instead of the config's policy)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a config key, e.g. optimizer.learning_rate=0.01 "
                            "(value read as TOML; repeatable)")
    train.add_argument("--no-progress", action="store_true",
                       help="no progress bar (by default shown when stderr is a terminal)")


def _add_run_commands(commands: Any) -> None:
    """The commands that read a run directory or a checkpoint."""
    inspect = commands.add_parser("inspect", help="show and verify a checkpoint",
                                  description="Verify a checkpoint file, or the newest valid "
                                              "one of a run or checkpoints directory.")
    inspect.add_argument("path", metavar="PATH", help="checkpoint file, run dir or checkpoints dir")
    inspect.add_argument("--json", action="store_true", help="one JSON object")
    inspect.add_argument("--deep", action="store_true",
                         help="also read the file through libhdf5 (in a bounded child) and "
                              "compare that view with the manifest purenet reads")

    rewind = commands.add_parser(
        "rewind", help="the exact state of a run at any step, as a checkpoint file",
        description="Replay the run in RUN_DIR from its newest checkpoint at or before STEP "
                    "and write the state after STEP as a checkpoint file (bit for bit the "
                    "state the uninterrupted run had).")
    rewind.add_argument("run_dir", metavar="RUN_DIR")
    rewind.add_argument("--step", type=_integer(0), required=True, metavar="K")
    rewind.add_argument("--output", metavar="FILE",
                        help="default: RUN_DIR/rewound/step-NNNNNNNN.h5, K in 8 digits "
                             "(outside checkpoints/)")

    plot = commands.add_parser("plot", help="write PNG figures into a run directory")
    plot.add_argument("run_dir", metavar="RUN_DIR")

    evaluate = commands.add_parser("evaluate", help="metrics on the test split or a file")
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--data", metavar="FILE", help="a .csv or .npz file instead")
    evaluate.add_argument("--target", metavar="COLUMN", help="the target column of --data")
    evaluate.add_argument("--json", action="store_true", help="one JSON object")

    predict = commands.add_parser("predict", help="predictions for the rows of a CSV file")
    predict.add_argument("run_dir", metavar="RUN_DIR")
    predict.add_argument("input", metavar="INPUT.csv")
    predict.add_argument("--output", metavar="FILE", help="default: stdout")
    predict.add_argument("--no-header", action="store_true",
                         help="INPUT has no header row: its columns are the features in "
                              "the training order (by default the header names them)")

    example = commands.add_parser(
        "example", help="print a shipped example experiment file",
        description="Print the example experiment NAME (e.g. `purenet example circles > "
                    "circles.toml`); without NAME, list them.")
    example.add_argument("name", metavar="NAME", nargs="?")


def example(args: argparse.Namespace) -> int:
    from purenet.experiment.examples import example_names, example_text

    sys.stdout.write(example_text(args.name) if args.name else "\n".join(example_names()) + "\n")
    return 0


def error_text(error: BaseException) -> str:
    """One sentence for an error: an OS error says what it was doing to which file, never
    ``[Errno 17] File exists: 'afile'`` nor the name of a temp file."""
    if not isinstance(error, OSError) or error.errno is None or error.filename is None:
        return str(error)
    from purenet.checkpoint.atomic import temp_of

    name = os.fspath(error.filename)
    temp = temp_of(os.path.basename(name))
    if temp is not None:
        name = os.path.join(os.path.dirname(name), temp[0])
    sentence = OS_ERRORS.get(error.errno, "{strerror}: {name}")
    return sentence.format(name=name, strerror=error.strerror or "error")


OS_ERRORS = {
    errno.EEXIST: "{name} already exists and is a file, where a directory is needed; "
                  "move it away or choose another path",
    errno.ENOTDIR: "{name}: a part of this path is a file, not a directory",
    errno.ENOENT: "no such file or directory: {name}",
    errno.EACCES: "permission denied: {name}",
    errno.EPERM: "not permitted: {name}",
    errno.ENOSPC: "no space left on the device while writing {name}",
    errno.EROFS: "{name} is on a read-only filesystem",
    errno.EISDIR: "{name} is a directory, where a file is needed",
}


HANDLERS = {"inspect": inspect, "plot": plot, "evaluate": evaluate, "predict": predict,
            "example": example,
            "rewind": rewind, **SWEEP_HANDLERS, "upgrade": upgrade_command.upgrade}


def _warning(message: Any, category: type, filename: str, lineno: int, file: Any = None,
             line: Any = None) -> None:
    print(f"purenet: warning: {message}", file=sys.stderr)


def _stdout_closed() -> bool:
    """Whether standard output is closed (``>&-``: Python then sets sys.stdout to None)."""
    if sys.stdout is None:
        return True
    try:
        os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):   # closed, or no descriptor at all
        return not hasattr(sys.stdout, "write")
    return False


def main(argv: Sequence[str] | None = None, prog: str = "purenet") -> int:
    """Run the ``purenet`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    if _stdout_closed() and not (args.command == "predict" and args.output):
        # print() to a closed stdout prints nothing and succeeds: the output would be lost.
        if sys.stderr is not None:
            print(f"purenet: error: standard output is closed, so {prog} {args.command} could "
                  "show nothing; run it with stdout open (or predict with --output FILE)",
                  file=sys.stderr)
        return EXIT_ERROR
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    previous_warning, warnings.showwarning = warnings.showwarning, _warning
    try:
        import_pieces(args.imports)
        if args.command == "train":
            return _train(args, prog, argv)
        return HANDLERS[args.command](args)
    except BrokenPipeError:   # e.g. `purenet inspect --json RUN | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except (CheckpointError, ExperimentError, ValueError, TypeError, OSError, ImportError,
            ArithmeticError) as error:
        print(f"purenet: error: {error_text(error)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as interrupt:
        number = int(getattr(interrupt, "signal_number", signal.SIGINT))
        print(f"\npurenet: {signal.Signals(number).name} received: stopped", file=sys.stderr)
        return 128 + number
    finally:
        signal.signal(signal.SIGTERM, previous)
        warnings.showwarning = previous_warning
