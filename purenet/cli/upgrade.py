"""``purenet upgrade FILE [FILE ...]``: rewrite older checkpoints as the current format.

Each file is read in a child process with a time and memory limit, rewritten beside
itself, read back and compared, and only then renamed over the old one
(``purenet.checkpoint.upgrade``). A directory stands for its checkpoint files
(``step-*.h5``, in it or in its ``checkpoints/`` folder).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

EXIT_ERROR = 1


def add_parser(commands: Any) -> None:
    """Add the ``upgrade`` subcommand to ``commands`` (argparse subparsers)."""
    upgrade = commands.add_parser(
        "upgrade", help="rewrite format 1 and 2 checkpoints as the current format",
        description="Rewrite each checkpoint FILE (or the step-*.h5 files of a directory) as "
                    "the current checkpoint format. The new file is verified before it "
                    "replaces the old one; a file already current is left alone.")
    upgrade.add_argument("paths", metavar="FILE", nargs="+",
                         help="checkpoint files, or checkpoints/run directories")
    upgrade.add_argument("--output", metavar="FILE",
                         help="write the upgraded file here instead (one FILE only)")
    upgrade.add_argument("--dry-run", action="store_true",
                         help="read, rewrite and verify, but replace nothing")


def _files(paths: list[str]) -> list[str]:
    from purenet.checkpoint.policy import checkpoint_files, checkpoints_directory

    files = []
    for path in paths:
        if os.path.isdir(path):
            found = [file for _, file in checkpoint_files(checkpoints_directory(path))]
            if not found:
                raise FileNotFoundError(f"no checkpoint files (step-*.h5) in {path}: nothing "
                                        "to upgrade; name a checkpoints or run directory")
            files += found
        else:
            files.append(path)
    return files


def upgrade(args: argparse.Namespace) -> int:
    """Upgrade every file named; report each; exit 1 if any failed (the rest still go)."""
    from purenet.checkpoint.upgrade import upgrade_checkpoint
    from purenet.errors import CheckpointError

    files = _files(args.paths)
    if args.output and len(files) != 1:
        raise ValueError(f"--output takes one checkpoint file, {len(files)} were given")
    failed = 0
    for path in files:
        try:
            done = upgrade_checkpoint(path, args.output, dry_run=args.dry_run)
        except CheckpointError as error:
            print(f"purenet: error: {error}", file=sys.stderr)
            failed += 1
            continue
        if done.from_version == done.to_version:
            print(f"{path}: format {done.to_version} already (step {done.step}), left as it is")
        else:
            verb = "would be rewritten" if args.dry_run else "rewritten"
            where = "" if done.output == path else f" to {done.output}"
            print(f"{path}: format {done.from_version} -> {done.to_version} (step {done.step}), "
                  f"{verb}{where} and verified")
    return EXIT_ERROR if failed else 0
