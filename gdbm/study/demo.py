"""``gdbm demo``: the whole workflow on the shipped example data, in a few minutes on a laptop CPU.

The example set (``gdbm/resources/examples/<name>``, made by ``gdbm datagen``; its folder holds
the exact command) is split by time: the first three quarters of its frames are the training
frames of the model shipped for it (``<name>-voxel``, its note says how it was trained), the
held-out quarter is backmapped from its CG frames by that model (``gdbm backmap``), refined with
the beads held (``--refine``, thermal by default) and both the generator's own frames and the
refined ones are evaluated against the held-out AA frames (``gdbm eval``). With ``steps`` a
model is trained from scratch first instead (``gdbm fit``; minutes for a few hundred updates,
which show the machinery, not what the method reaches). Everything lands in one folder: the
config, the generated frames, ``metrics.json``, the plots and ``report.md``.
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


def demo_config(data: dict[str, str], steps: int, temperature: float | None = None) -> dict:
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
        "refine": {"temperature": temperature},
    }


def shipped_model(example: str) -> str:
    """The name of the model shipped for an example set (``<example>-voxel``)."""
    return f"{example}-voxel"


def run_demo(out: str | Path, example: str = "cumene", steps: int | None = None, candidates: int = 4,
             force: bool = False, refine: str = "thermal", model: str | None = None) -> Path:
    """Backmap the example's held-out frames with its shipped model (or ``model``: another shipped
    model's name or a checkpoint, e.g. a generic model on a molecule it did not see; or, with
    ``steps``, a model trained from scratch), refine them (``refine``: none, minimize or thermal)
    and evaluate the generator's own frames and the refined ones; returns the path of ``report.md``."""
    from gdbm.analysis.evaluate import Evaluator
    from gdbm.analysis.report import evaluate_sets
    from gdbm.data.frame_writer import write_frames
    from gdbm.data.trajectory import read_frames
    from gdbm.sampling.backmapper import SamplerConfig
    from gdbm.sampling.jobs import BackmapJob
    from gdbm.sampling.pipeline import backmap_refined, raw_output_path, refinement_for
    from gdbm.topology.system import load_mapped_system
    from gdbm.training.config import ExperimentConfig
    from gdbm.training.pretrained import available, resolve_checkpoint
    from gdbm.training.run_folder import train_in_folder
    from gdbm.training.trainer import CHECKPOINT

    out = Path(out)
    if (out / "report.md").exists() and not force:
        raise InputError("holds a demo report; pass --force to run it again", out)
    folder = example_folder(example)
    if model is not None and steps is not None:
        raise InputError("give a model to backmap with or --steps to train one, not both")
    if model is not None:
        resolve_checkpoint(model)  # an unknown name or a missing file fails before any work
    elif steps is None and shipped_model(example) not in available():
        raise InputError(f"no model is shipped for the example set {example!r} (shipped: {', '.join(available())}); "
                         "pass --steps N to train one from scratch")
    mapping = _mapping_file(folder)
    temperature = json.loads((folder / "datagen.json").read_text())["inputs"]["settings"]["temperature"]
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
    times: dict[str, float] = {}
    config = None
    if steps is None:
        checkpoint = resolve_checkpoint(model or shipped_model(example))
    else:
        data = {"topology": str(folder / "topol.top"), "mapping": str(mapping),
                "aa": str(data_dir / "train_aa.xtc"), "aa_structure": str(folder / "aa.gro"),
                "cg": str(data_dir / "train_cg.xtc"), "cg_structure": str(folder / "cg.gro")}
        raw = demo_config(data, steps, temperature)
        write_text(out / "config.yaml", yaml.safe_dump(raw, sort_keys=False))
        config = ExperimentConfig.model_validate(raw)
        start = time.perf_counter()
        train_in_folder(config, out / "model", "force" if force else "auto")
        times["fit"] = time.perf_counter() - start
        checkpoint = out / "model" / CHECKPOINT

    start = time.perf_counter()
    job = BackmapJob(str(checkpoint), str(folder / "topol.top"), str(mapping), str(data_dir / "test_cg.xtc"),
                     SamplerConfig(n_gibbs=1, candidates=candidates), cg_struct=str(folder / "cg.gro"))
    refinement = refinement_for(checkpoint, refine, overrides={"temperature": temperature})
    output = out / "backmapped.xtc"
    report = backmap_refined(job, output, refinement, force=True)
    if report.failed:
        raise InputError(f"{len(report.failed)} held-out frames failed: {next(iter(report.failed.values()))}")
    times["backmap"] = time.perf_counter() - start

    start = time.perf_counter()
    system = load_mapped_system(folder / "topol.top", mapping)
    test_cg = read_frames(data_dir / "test_cg.xtc", folder / "cg.gro")
    test_aa = read_frames(data_dir / "test_aa.xtc", folder / "aa.gro")
    sets = {"generator": read_frames(raw_output_path(output) if refine != "none" else output, folder / "aa.gro")}
    if refine != "none":
        sets[f"generator + {refine}"] = read_frames(output, folder / "aa.gro")
    evaluator = Evaluator(system.aa, mapping=system.mapping)  # gdbm eval's LJ cutoff, so the numbers agree
    metrics = evaluate_sets(evaluator, test_aa, sets, out, cg=test_cg, force=True,
                            settings={"example": example, "model": str(checkpoint), "candidates": candidates,
                                      "refine": refine})
    times["eval"] = time.perf_counter() - start
    path = out / "report.md"
    write_text(path, _report(example, folder, len(aa), n_train, config, checkpoint, refine, times, metrics, out))
    return path


def _report(example: str, folder: Path, n_frames: int, n_train: int, config, checkpoint: Path, refine: str,
            times: dict[str, float], metrics: dict, out: Path) -> str:
    record = json.loads((folder / "datagen.json").read_text())
    command = record.get("command", "")
    summary = (out / "summary.md").read_text()
    plots = "\n".join(f"![{p.stem}]({p.name})" for p in sorted(out.glob("*.png")))
    if config is None and checkpoint.stem != shipped_model(example):
        model = f"the model `{checkpoint.stem}` (`gdbm models {checkpoint.stem}` says what it was trained on)"
        fit_row = ""
    elif config is None:
        model = (f"the model shipped for it, `{checkpoint.stem}` (trained on frames 0-{n_train - 1}; "
                 f"`gdbm models {checkpoint.stem}` says how)")
        fit_row = ""
    else:
        t = config.training
        model = (f"a small voxel model trained here from scratch on frames 0-{n_train - 1} ({t.steps} generator "
                 "updates: minutes, which show the machinery, not what the method reaches)")
        fit_row = (f"| `gdbm fit` ({t.pretrain_steps} supervised + {t.steps - t.pretrain_steps} x ({t.n_critic} "
                   f"critic + 1 generator) updates, batch {t.batch_size}) | {times['fit']:.0f} s |\n")
    refined = "" if refine == "none" else f", then `--refine {refine}` (bead centres held)"
    return f"""# gdbm demo: {example}

The shipped example set `{example}` ({n_frames} frames, made by `gdbm datagen`:
`{command}`) was split by time. The remaining {n_frames - n_train} frames were backmapped from
their CG frames by {model}{refined}, and compared with their AA frames. The set `generator` is
the network's own output; `generator + {refine}` the same frames after the refinement.

| stage | wall time |
| --- | --- |
{fit_row}| `gdbm backmap` ({n_frames - n_train} frames, forward pass + 1 Gibbs sweep{refined}) | {times['backmap']:.0f} s |
| `gdbm eval` | {times['eval']:.0f} s |

Files here: `backmapped.raw.xtc` (the generator's frames), `backmapped.xtc` (refined),
`metrics.json`, `summary.md`, the plots{", `config.yaml` and `model/`" if config is not None else ""}.

## Evaluation (held-out frames)

JSDs in natural logs (0 = identical distributions, 0.693 = disjoint); "reference half vs half"
is the noise floor of the held-out reference itself.

{summary}

## Plots

{plots}
"""
