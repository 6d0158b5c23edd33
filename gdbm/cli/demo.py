"""``gdbm demo``: backmap, refine and evaluate the shipped example set (argument glue over :func:`gdbm.study.demo.run_demo`)."""

from __future__ import annotations

from gdbm.study.demo import __doc__ as _DEMO_DOC
from gdbm.study.demo import run_demo


def add_parser(subparsers) -> None:
    """Register ``demo`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser("demo", help="backmap, refine and evaluate the shipped example data (minutes)",
                              description=_DEMO_DOC.split("\n\n")[1].replace("\n", " "))
    p.add_argument("-o", "--output", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--example", default="cumene", help="shipped example set (default cumene)")
    p.add_argument("--steps", type=int,
                   help="train a model from scratch first, this many generator updates (60%% supervised; 300 take "
                        "about 10 min on one CPU core), instead of using the model shipped for the example")
    p.add_argument("--model", help="backmap with this shipped model (name, see 'gdbm models') or checkpoint instead "
                                    "of the example's own, e.g. a generic model on a molecule it did not see")
    p.add_argument("--refine", choices=("none", "minimize", "thermal"), default="thermal",
                   help="refine the generated frames with the beads held (default thermal, at the example's "
                        "temperature); both the generator's own frames and the refined ones are evaluated")
    p.add_argument("--candidates", type=int, default=4,
                   help="candidates per bead when backmapping (default 4, for a demo of a few minutes; "
                        "gdbm backmap's default is 8)")
    p.add_argument("--force", action="store_true", help="run again in a folder that holds a report")
    p.set_defaults(run=_run)


def _run(args) -> int:
    report = run_demo(args.output, args.example, args.steps, args.candidates, args.force, args.refine, args.model)
    print(f"report: {report}")
    return 0
