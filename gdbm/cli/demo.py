"""``gdbm demo``: fit, backmap and evaluate on the shipped example set (argument glue over :func:`gdbm.study.demo.run_demo`)."""

from __future__ import annotations

from gdbm.study.demo import __doc__ as _DEMO_DOC
from gdbm.study.demo import run_demo


def add_parser(subparsers) -> None:
    """Register ``demo`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser("demo", help="fit, backmap and evaluate on the shipped example data (minutes)",
                              description=_DEMO_DOC.split("\n\n")[1].replace("\n", " "))
    p.add_argument("-o", "--output", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--example", default="cumene", help="shipped example set (default cumene)")
    p.add_argument("--steps", type=int, default=300, help="generator updates, 60%% of them supervised (default 300)")
    p.add_argument("--candidates", type=int, default=8, help="candidates per bead when backmapping (default 8)")
    p.add_argument("--force", action="store_true", help="run again in a folder that holds a report")
    p.set_defaults(run=_run)


def _run(args) -> int:
    report = run_demo(args.output, args.example, args.steps, args.candidates, args.force)
    print(f"report: {report}")
    return 0
