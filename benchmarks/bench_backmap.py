"""Backmapping speed: one 5832-atom sPS test frame, a forward pass + 2 Gibbs sweeps, 64 candidates per bead.

Uses the shipped ``sps-voxel`` model (timing does not depend on the weights, but this is the
model users run). A fresh process per precision, so peak memory (maximum resident set size) is
this job's alone. The original DBM code on this machine: about 0.94 s per atom step at 64
candidates, about 4.5 hours for one frame; the goal is under 330 s (50x).

Run: ``python benchmarks/bench_backmap.py [--precision bfloat16] [--threads N]`` (prints JSON), or
``python -m pytest benchmarks/bench_backmap.py --benchmark-only``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

SPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sps"
DBM_SECONDS = 4.5 * 3600


def measure(precision: str, threads: int | None, candidates: int, checkpoint: str) -> dict:
    import torch

    from gdbm.data.trajectory import Frames, read_frames
    from gdbm.sampling.backmapper import Backmapper, SamplerConfig

    if threads:
        torch.set_num_threads(threads)
    sampler = Backmapper.from_checkpoint(checkpoint, SPS / "topol.top", SPS / "PS1.map",
                                         SamplerConfig(n_gibbs=2, candidates=candidates, precision=precision))
    system = sampler.system
    cg = read_frames(SPS / "test_t568" / "cg.xtc", SPS / "test_t568" / "cg.gro")
    one = Frames(cg.positions[:1], cg.boxes[:1], cg.labels[:1], cg.names, cg.resnames, cg.resids)
    start = time.perf_counter()
    sampler.backmap(one, progress=False)
    seconds = time.perf_counter() - start
    return {"precision": precision, "threads": torch.get_num_threads(), "candidates": candidates,
            "atoms": system.aa.n_atoms, "seconds_per_frame": round(seconds, 1),
            "atoms_per_s": round(system.aa.n_atoms / seconds, 2), "vs_dbm": round(DBM_SECONDS / seconds, 1),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}


@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_backmap_one_frame(benchmark, precision: str):
    def run() -> dict:
        out = subprocess.run([sys.executable, __file__, "--precision", precision], check=True, capture_output=True,
                             text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(result)
    assert result["seconds_per_frame"] > 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="backmapping speed on one sPS frame")
    parser.add_argument("--precision", default="bfloat16", choices=("float32", "bfloat16"))
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--candidates", type=int, default=64)
    parser.add_argument("--checkpoint", default="sps-voxel", help="model to time (default: the shipped sps-voxel)")
    a = parser.parse_args()
    print(json.dumps(measure(a.precision, a.threads, a.candidates, a.checkpoint)))
