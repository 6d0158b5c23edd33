"""Scale: backmapped atoms per second vs box size and vs processes; training samples per second vs processes.

Boxes are sPS test frame 0 repeated along its box vectors (:func:`gdbm.data.trajectory.replicate`):
1 (5832 atoms), 2x2x2 (46656) and 2x4x4 (186624), backmapped with the shipped ``sps-voxel``. Every
measurement is a fresh ``gdbm`` process (or ``--workers N`` / ``torchrun`` processes): wall-clock
seconds of the whole command, the backmapping seconds it reports, and the peak resident memory of
its largest process. Prints one JSON line per measurement.

Run::

    python benchmarks/bench_scale.py backmap --replicas 1 8 32 [--gibbs 2 --candidates 8]
    python benchmarks/bench_scale.py processes --frames 4 --processes 1 2
    python benchmarks/bench_scale.py train --processes 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sps"
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "sps.yaml"
SHAPES = {1: (1, 1, 1), 8: (2, 2, 2), 32: (2, 4, 4)}


def replicated_system(copies: int, frames: int, folder: Path) -> tuple[Path, Path]:
    """A topology with ``copies`` times the chains and the first ``frames`` CG test frames replicated to match."""
    from gdbm.data.frame_writer import write_frames
    from gdbm.data.trajectory import read_frames, replicate

    top = (SPS / "topol.top").read_text().replace('#include "topol_PS1.itp"', f'#include "{SPS / "topol_PS1.itp"}"')
    top = re.sub(r"^PS1\s+36\s*$", f"PS1       {36 * copies}", top, flags=re.M)
    top_path = folder / f"topol_x{copies}.top"
    top_path.write_text(top)
    cg = read_frames(SPS / "test_t568" / "cg.xtc", SPS / "test_t568" / "cg.gro").subset(list(range(frames)))
    cg_path = folder / f"cg_x{copies}.pdb"
    write_frames(cg_path, replicate(cg, SHAPES[copies]), force=True)
    return top_path, cg_path


# runs a command and prints the peak RSS (kB) of its largest descendant: this measurement's alone
_PEAK = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
         "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


def timed(command: list[str], env: dict | None = None) -> dict:
    """Run ``command``; wall seconds, the seconds ``gdbm backmap`` reports, peak RSS of its largest process."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", _PEAK, *command], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    wall = time.perf_counter() - start
    if run.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{run.stderr[-3000:]}")
    reported = re.search(r"wrote (\d+) frames to .* in ([\d.]+) s", run.stdout)
    peak = re.search(r"peak_rss_kb (\d+)", run.stdout)
    return {"wall_s": round(wall, 1), "backmap_s": float(reported.group(2)) if reported else None,
            "peak_rss_gb": round(int(peak.group(1)) / 2**20, 3)}


def backmap_command(top: Path, cg: Path, out: Path, args: argparse.Namespace, threads: int,
                    launcher: list[str] | None = None) -> list[str]:
    gdbm = launcher or [sys.executable, "-m", "gdbm"]
    return [*gdbm, "--threads", str(threads), "backmap", "--checkpoint", args.checkpoint, "--top", str(top),
            "--map", str(SPS / "PS1.map"), "--cg", str(cg), "-o", str(out), "--gibbs", str(args.gibbs),
            "--candidates", str(args.candidates), "--max-batch", str(args.max_batch), "--force"]


def bench_box_sizes(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for copies in args.replicas:
            top, cg = replicated_system(copies, 1, Path(tmp))
            result = timed(backmap_command(top, cg, Path(tmp) / "out.xtc", args, args.threads))
            atoms = 5832 * copies
            print(json.dumps({"benchmark": "box size", "atoms": atoms, "gibbs": args.gibbs,
                              "candidates": args.candidates, "max_batch": args.max_batch, "threads": args.threads,
                              "atoms_per_s": round(atoms / result["backmap_s"], 1), **result}), flush=True)


def bench_processes(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        top, cg = replicated_system(1, args.frames, Path(tmp))
        for n in args.processes:
            for mode in ("workers", "torchrun") if n > 1 else ("workers",):
                out = Path(tmp) / "out.xtc"
                if mode == "torchrun":
                    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                                str(n), "-m", "gdbm"]
                    command = backmap_command(top, cg, out, args, 1, launcher)
                else:
                    command = [*backmap_command(top, cg, out, args, args.threads), "--workers", str(n)]
                result = timed(command, {"OMP_NUM_THREADS": "1"} if mode == "torchrun" else None)
                atoms = 5832 * args.frames
                print(json.dumps({"benchmark": "processes", "mode": mode, "processes": n, "frames": args.frames,
                                  "gibbs": args.gibbs, "candidates": args.candidates,
                                  "atoms_per_s": round(atoms / result["backmap_s"], 1), **result}), flush=True)


def bench_training(args: argparse.Namespace) -> None:
    """``gdbm fit`` of configs/sps.yaml past its warm-up: seconds per adversarial iteration from the log."""
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.processes:
            config = Path(tmp) / "sps.yaml"
            text = CONFIG.read_text().replace("../../shared", str(SPS.parents[1]))
            text = re.sub(r"pretrain_steps: \d+", "pretrain_steps: 0", text)
            text = re.sub(r"log_every: \d+", "log_every: 1", text)
            config.write_text(text)
            out = Path(tmp) / f"run{n}"
            steps = args.iterations + 1
            gdbm = ([sys.executable, "-m", "gdbm", "--threads", str(args.threads)] if n == 1 else
                    [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n),
                     "-m", "gdbm"])
            result = timed([*gdbm, "fit", "--config", str(config), "-o", str(out), "--steps", str(steps)],
                           {"OMP_NUM_THREADS": "1"} if n > 1 else None)
            rows = [line.split(",") for line in (out / "log.csv").read_text().splitlines()]
            seconds = {int(r[0]): float(r[rows[0].index("seconds")]) for r in rows[1:]}
            per_iteration = (seconds[steps] - seconds[1]) / (steps - 1)  # the first step warms up
            samples = 6 * 64 / per_iteration  # (n_critic + 1) x batch_size sequences per iteration
            print(json.dumps({"benchmark": "training", "processes": n,
                              "threads_per_process": args.threads if n == 1 else 1,
                              "seconds_per_iteration": round(per_iteration, 2), "samples_per_s": round(samples, 1),
                              **{k: v for k, v in result.items() if k != "backmap_s"}}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("backmap", "processes", "train"):
        p = sub.add_parser(name)
        p.add_argument("--threads", type=int, default=1, help="torch threads of a single process (default 1)")
        p.add_argument("--checkpoint", default="sps-voxel")
        p.add_argument("--gibbs", type=int, default=2)
        p.add_argument("--candidates", type=int, default=8)
        p.add_argument("--max-batch", type=int, default=4096, help="environments per network call (gdbm default)")
    sub.choices["backmap"].add_argument("--replicas", type=int, nargs="+", choices=sorted(SHAPES), default=[1, 8, 32])
    sub.choices["processes"].add_argument("--frames", type=int, default=4)
    for name in ("processes", "train"):
        sub.choices[name].add_argument("--processes", type=int, nargs="+", default=[1, 2])
    sub.choices["train"].add_argument("--iterations", type=int, default=3)
    a = parser.parse_args()
    {"backmap": bench_box_sizes, "processes": bench_processes, "train": bench_training}[a.what](a)
