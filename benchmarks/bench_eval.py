"""``gdbm eval`` speed: 71 held-out sPS frames x 5832 atoms x 3 sets (reference, DBM, baseline).

The reference is measured as two halves (the noise floor) whose observations are merged,
then the two published generated sets; per-type RDFs, energies, clashes, CG consistency
and all plots included. The issue's goal: under 2 minutes on the 2-core machine.
Run: ``python -m pytest benchmarks/bench_eval.py --benchmark-only``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gdbm.analysis.evaluate import Evaluator
from gdbm.analysis.report import evaluate_sets
from gdbm.data import read_frames
from gdbm.topology.system import load_mapped_system

SPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sps"
TEST = SPS / "test_t568"


@pytest.fixture(scope="module")
def inputs():
    system = load_mapped_system(SPS / "topol.top", SPS / "PS1_cg_fritz.map")
    structure = TEST / "aa.gro"
    reference = read_frames(TEST / "aa.xtc", structure)
    generated = {name: read_frames(TEST / f"{name}.xtc", structure) for name in ("deepbackmap", "baseline")}
    cg = read_frames(TEST / "cg.xtc", TEST / "cg.gro")
    return system, reference, generated, cg


def test_eval_71_frames_3_sets(benchmark, inputs, tmp_path: Path):
    system, reference, generated, cg = inputs
    evaluator = Evaluator(system.aa, mapping=system.mapping)
    metrics = benchmark.pedantic(evaluate_sets, args=(evaluator, reference, generated, tmp_path),
                                 kwargs={"cg": cg, "force": True}, rounds=1, iterations=1)
    assert metrics["deepbackmap"]["n_frames"] == 71
