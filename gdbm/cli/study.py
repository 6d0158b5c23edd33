"""``gdbm study``: run a study config to its summary (argument glue over :func:`gdbm.study.runner.run_study`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``study`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser(
        "study", help="train several models, backmap test sets with each, evaluate and summarise",
        description="Run a study (configs/study_*.yaml): make missing data with gdbm datagen, train every model "
                    "arm on its mix of systems, backmap every test set with every arm, evaluate them side by side "
                    "and write summary.md, summary.json and plots. Finished stages are skipped, so a rerun "
                    "costs nothing and an interrupted study resumes where it stopped.")
    p.add_argument("--config", required=True, help="study config (YAML)")
    p.add_argument("-o", "--output", help="study folder (default runs/<config name>)")
    p.add_argument("--summary-only", action="store_true", help="rewrite the summary from the finished stages")
    p.add_argument("--arm", action="append", default=[], metavar="MODEL",
                   help="train this model arm and backmap the test sets with it, then stop (repeatable): several "
                        "processes can work on a study's arms side by side; a full run evaluates and summarises")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gdbm.study.runner import run_study

    out = Path(args.output or Path("runs") / Path(args.config).stem)
    summary = run_study(args.config, out, arms=args.arm, summary_only=args.summary_only,
                        log=lambda line: print(line, flush=True))
    if summary is not None:
        print((out / "summary.md").read_text())
    return 0
