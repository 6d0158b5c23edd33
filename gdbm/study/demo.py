"""``gdbm demo``: the whole workflow on the shipped example data, in a few minutes on a laptop CPU.

The example set (``gdbm/resources/examples/<name>``, made by ``gdbm datagen``; its folder holds
the exact command) is split by time: the first three quarters of its frames train a small
voxel model (``gdbm fit``), the held-out quarter is backmapped from its CG frames
(``gdbm backmap``) and evaluated against its AA frames (``gdbm eval``). Everything lands in
one folder: the config, the model, the generated frames, ``metrics.json``, the plots and
``report.md``. A demo model trains for minutes, not hours: it shows the machinery and
what a short training reaches, not the best this method can do (for that see the sPS results
in docs/sps-results.md).
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

import yaml

from gdbm.utils.atomic_files import write_text
from gdbm.utils.errors import InputError

EXAMPLES = "examples"


def example_folder(name: str) -> Path:
    """The shipped example set ``name`` (a ``gdbm datagen`` output folder)."""
    folder = Path(str(resources.files("gdbm") / "resources" / EXAMPLES / name))
    if not (folder / "datagen.json").is_file():
        root = folder.parent
        names = sorted(p.name for p in root.iterdir() if (p / "datagen.json").is_file()) if root.is_dir() else []
        raise InputError(f"no shipped example set {name!r} (shipped: {', '.join(names) or 'none'})")
    return folder


def _mapping_file(folder: Path) -> Path:
    record = json.loads((folder / "datagen.json").read_text())
    names = record.get("outputs", {}).get("mappings") or [p.name for p in folder.glob("*.yaml")]
    if len(names) != 1:
        raise InputError(f"the demo needs an example with one molecule type, found mappings {names}", folder)
    return folder / Path(names[0]).name


def demo_config(data: dict[str, str], steps: int) -> dict:
    """A small, fast voxel experiment: 16 channels, one residual block per stage; the first 60% of
    the updates supervised (cheap, and they get the molecules right quickly), then 3 critic updates
    per generator update."""
    return {
        "data": data,
        "environment": {"cutoff": 0.7},
        "model": {"conditioner": "voxel", "voxel": {"resolution": 8, "length": 1.2, "channels": 16, "noise_dim": 16,
                                                "n_blocks": 1, "full_blocks": 0}},
        "training": {"batch_size": 32, "steps": steps, "n_critic": 3, "gp_weight": 0.1, "gp_fraction": 0.25,
                     "pretrain_steps": (3 * steps) // 5, "pretrain_lr": 1e-3,
                     "checkpoint_every": 25, "log_every": 5, "seed": 0},
        "prior": {"mode": "match", "weight": 0.01, "ramp_start": 0, "ramp_end": max(1, steps // 3)},
    }


def run_demo(out: str | Path, example: str = "cumene", steps: int = 300, candidates: int = 8,
             force: bool = False) -> Path:
    """Fit, backmap and evaluate on the example set; returns the path of ``report.md``."""
    from gdbm.analysis.evaluate import Evaluator
    from gdbm.analysis.report import evaluate_sets
    from gdbm.data.frame_writer import write_frames
    from gdbm.data.trajectory import read_frames
    from gdbm.sampling.backmapper import Backmapper, SamplerConfig
    from gdbm.training.config import ExperimentConfig
    from gdbm.training.run_folder import train_in_folder
    from gdbm.training.trainer import CHECKPOINT

    out = Path(out)
    if (out / "report.md").exists() and not force:
        raise InputError("holds a demo report; pass --force to run it again", out)
    folder = example_folder(example)
    mapping = _mapping_file(folder)
    aa = read_frames(folder / "aa.xtc", folder / "aa.gro")
    cg = read_frames(folder / "cg.xtc", folder / "cg.gro")
    n_train = (3 * len(aa)) // 4
    if n_train < 1 or n_train == len(aa):
        raise InputError(f"{len(aa)} frames cannot be split into training and held-out frames", folder / "aa.xtc")

    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    train, test = slice(0, n_train), slice(n_train, None)
    for name, frames in (("train_aa", aa.subset(train)), ("train_cg", cg.subset(train)),
                         ("test_aa", aa.subset(test)), ("test_cg", cg.subset(test))):
        write_frames(data_dir / f"{name}.xtc", frames, force=True)
    data = {"topology": str(folder / "topol.top"), "mapping": str(mapping),
            "aa": str(data_dir / "train_aa.xtc"), "aa_structure": str(folder / "aa.gro"),
            "cg": str(data_dir / "train_cg.xtc"), "cg_structure": str(folder / "cg.gro")}
    raw = demo_config(data, steps)
    write_text(out / "config.yaml", yaml.safe_dump(raw, sort_keys=False))
    config = ExperimentConfig.model_validate(raw)
    times: dict[str, float] = {}

    start = time.perf_counter()
    model_dir = out / "model"
    train_in_folder(config, model_dir, "force" if force else "auto")
    times["fit"] = time.perf_counter() - start

    start = time.perf_counter()
    test_cg = read_frames(data_dir / "test_cg.xtc", folder / "cg.gro")
    test_aa = read_frames(data_dir / "test_aa.xtc", folder / "aa.gro")
    sampler = Backmapper.from_checkpoint(model_dir / CHECKPOINT, folder / "topol.top", mapping,
                                         SamplerConfig(n_gibbs=1, candidates=candidates))
    system = sampler.system
    generated = sampler.backmap(test_cg)
    write_frames(out / "backmapped.xtc", generated, force=True)
    times["backmap"] = time.perf_counter() - start

    start = time.perf_counter()
    evaluator = Evaluator(system.aa, cutoff=0.7, mapping=system.mapping)
    metrics = evaluate_sets(evaluator, test_aa, {"gdbm_demo": generated}, out, cg=test_cg, force=True,
                            settings={"example": example, "steps": steps, "candidates": candidates})
    times["eval"] = time.perf_counter() - start
    report = out / "report.md"
    write_text(report, _report(example, folder, len(aa), n_train, config, times, metrics, out))
    return report


def _report(example: str, folder: Path, n_frames: int, n_train: int, config, times: dict[str, float],
            metrics: dict, out: Path) -> str:
    record = json.loads((folder / "datagen.json").read_text())
    command = record.get("command", "")
    summary = (out / "summary.md").read_text()
    plots = "\n".join(f"![{p.stem}]({p.name})" for p in sorted(out.glob("*.png")))
    t = config.training
    return f"""# gdbm demo: {example}

The shipped example set `{example}` ({n_frames} frames, made by `gdbm datagen`:
`{command}`) was split by time: frames 0-{n_train - 1} trained a small voxel model, the
remaining {n_frames - n_train} frames were backmapped from their CG frames and compared with
their AA frames. A demo model trains for minutes: the numbers show how far {t.steps} generator
updates get, not what the method reaches (see docs/sps-results.md for the sPS model).

| stage | wall time |
| --- | --- |
| `gdbm fit` ({t.pretrain_steps} supervised + {t.steps - t.pretrain_steps} x ({t.n_critic} critic + 1 generator) updates, batch {t.batch_size}) | {times['fit']:.0f} s |
| `gdbm backmap` ({n_frames - n_train} frames, forward pass + 1 Gibbs sweep) | {times['backmap']:.0f} s |
| `gdbm eval` | {times['eval']:.0f} s |

Files here: `config.yaml` (the experiment), `model/` (checkpoint and training log),
`backmapped.xtc`, `metrics.json`, `summary.md`.

## Evaluation (held-out frames)

JSDs in natural logs (0 = identical distributions, 0.693 = disjoint); "reference half vs half"
is the noise floor of the held-out reference itself.

{summary}

## Plots

{plots}
"""
