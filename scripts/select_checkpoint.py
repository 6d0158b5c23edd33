"""Score the kept checkpoints of a ``gdbm fit`` run by backmapping validation frames, and name the best.

Each ``checkpoint_<step>.pt`` in the run folder backmaps the validation CG frames; the result
is measured with :class:`gdbm.analysis.evaluate.Evaluator` against the validation AA frames.
One CSV row per checkpoint (already scored steps are skipped, so the script can run again as
training goes on). The score is the sum of the pooled bond, angle, dihedral and improper JSDs
and the LJ-per-molecule JSD: the distributions the model is judged on.

For sPS the validation frames are training frames (the CG frames of ``train_t568``): choosing
on the test frames would leak the test set into the model.

    python scripts/select_checkpoint.py --run runs/sps_voxel --config configs/sps.yaml \
        --frames 2 --candidates 16 --eval-map ../shared/data/sps/PS1_cg_fritz.map
"""

from __future__ import annotations

import argparse
import csv
import re
import time
from pathlib import Path

import torch

from gdbm.analysis.evaluate import Evaluator, compare
from gdbm.data.trajectory import read_frames
from gdbm.training.trained_model import load_generator
from gdbm.ordering import plan_system
from gdbm.sampling.backmapper import Backmapper, SamplerConfig
from gdbm.topology.system import load_mapped_system
from gdbm.training.config import load_config

SCORE_KEYS = ("all_bonds", "all_angles", "all_dihedrals", "all_impropers", "lj_jsd")
COLUMNS = ("step", "score", *SCORE_KEYS, "rdf_mae_carbon", "cg_rmsd", "clash_pairs_per_frame", "lj_per_mol_std",
           "seconds")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, type=Path, help="gdbm fit run folder with checkpoint_<step>.pt files")
    p.add_argument("--config", required=True, help="the run's experiment config (validation data from its data)")
    p.add_argument("--frames", type=int, default=2, help="validation frames: the last N training frames")
    p.add_argument("--candidates", type=int, default=16)
    p.add_argument("--gibbs", type=int, default=2)
    p.add_argument("--eval-map", help="mapping for CG consistency (for sPS PS1_cg_fritz.map)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", default="bfloat16", choices=("float32", "bfloat16"))
    p.add_argument("-o", "--output", type=Path, help="CSV (default RUN/selection.csv)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    config = load_config(args.config)
    d = config.sources[0]
    system = load_mapped_system(d.topology, d.mapping, d.cg_itp, parameters=d.parameters)
    aa_all, cg_all = read_frames(d.aa, d.aa_structure), read_frames(d.cg, d.cg_structure)
    index = list(range(len(aa_all) - args.frames, len(aa_all)))
    aa, cg = aa_all.subset(index), cg_all.subset(index)
    mapping = load_mapped_system(d.topology, args.eval_map, parameters=d.parameters).mapping if args.eval_map else None
    evaluator = Evaluator(system.aa, mapping=mapping, per_type_rdf=False)
    reference = evaluator.observe(aa, cg, "reference")
    plan = plan_system(system, config.ordering)

    out = args.output or args.run / "selection.csv"
    done = {int(r["step"]) for r in csv.DictReader(out.open())} if out.exists() else set()
    steps = sorted(int(m.group(1)) for f in args.run.glob("checkpoint_*.pt")
                   if (m := re.fullmatch(r"checkpoint_(\d+)\.pt", f.name)))
    for step in (s for s in steps if s not in done):
        start = time.perf_counter()
        generator, spec, _ = load_generator(args.run / f"checkpoint_{step}.pt")
        sampler = Backmapper(system, generator, spec, plan, config.environment,
                             SamplerConfig(n_gibbs=args.gibbs, candidates=args.candidates, precision=args.precision))
        generated = sampler.backmap(cg, progress=False)
        observed = evaluator.observe(generated, cg, f"step {step}")
        metrics, scalars = compare(reference, observed), observed.scalars
        row = {"step": step, "score": sum(metrics[k] for k in SCORE_KEYS),
               **{k: metrics[k] for k in SCORE_KEYS}, "rdf_mae_carbon": metrics.get("rdf_mae_carbon"),
               "cg_rmsd": scalars.get("cg_rmsd"), "clash_pairs_per_frame": scalars.get("clash_pairs_per_frame"),
               "lj_per_mol_std": scalars.get("lj_per_mol_std"), "seconds": round(time.perf_counter() - start, 1)}
        new = not out.exists()
        with out.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
        print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    rows = list(csv.DictReader(out.open())) if out.exists() else []
    if rows:
        best = min(rows, key=lambda r: float(r["score"]))
        print(f"best: step {best['step']} (score {float(best['score']):.4g}) of {len(rows)} scored")


if __name__ == "__main__":
    main()
