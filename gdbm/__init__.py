"""gdbm: machine-learned backmapping of coarse-grained molecular structures (DeepBackMap and beyond).

The public API, imported on first use so that ``import gdbm`` stays fast (torch, MDAnalysis,
OpenMM and e3nn load only when a name that needs them is touched)::

    import gdbm

    system = gdbm.load_mapped_system("topol.top", "PS1.map")          # topology + mapping
    cg = gdbm.read_frames("cg.xtc", "cg.gro")                          # Frames: positions [F, n, 3] nm
    sampler = gdbm.Backmapper.from_checkpoint("sps-voxel", "topol.top", "PS1.map",
                                              gdbm.SamplerConfig(n_gibbs=2))
    gdbm.write_frames("aa.xtc", sampler.backmap(cg))                   # AA frames [F, N, 3] nm

Layers, lowest first (each imports only those before it; ``tests/test_layers.py``):
``utils`` < ``topology`` < ``physics`` < ``ordering`` < ``data`` < ``conditioners`` <
``training`` < ``sampling`` < wings (``analysis`` ``baselines`` ``cgsim`` ``datagen``
``temporal`` ``study``) < ``cli``. See ``docs/architecture.md``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from gdbm.utils.version import __version__

#: public name -> the module that defines it
_API = {
    # files and systems
    "read_frames": "gdbm.data.trajectory", "write_frames": "gdbm.data.frame_writer", "Frames": "gdbm.data.trajectory",
    "read_topology": "gdbm.topology.gromacs", "load_mapping": "gdbm.topology.mapfiles",
    "load_mapped_system": "gdbm.topology.system", "MappedSystem": "gdbm.topology.system",
    "Topology": "gdbm.topology.topology", "InputError": "gdbm.utils.errors",
    # physics
    "EnergyModel": "gdbm.physics.energy", "neighbor_pairs": "gdbm.physics.neighbors",
    # ordering and conditioners
    "OrderingConfig": "gdbm.ordering.plans", "plan_system": "gdbm.ordering.build",
    "CONDITIONERS": "gdbm.conditioners.registry", "Particles": "gdbm.data.particles",
    # training
    "ExperimentConfig": "gdbm.training.config", "load_config": "gdbm.training.config",
    "build_trainer": "gdbm.training.trainer", "load_generator": "gdbm.training.trained_model",
    "pretrained_models": "gdbm.training.pretrained", "fit": "gdbm.training.run_folder",
    "train_in_folder": "gdbm.training.run_folder", "plot_training_log": "gdbm.training.log_plot",
    # backmapping
    "Backmapper": "gdbm.sampling.backmapper", "SamplerConfig": "gdbm.sampling.backmapper",
    "BackmapJob": "gdbm.sampling.jobs", "backmap_trajectory": "gdbm.sampling.jobs",
    "morph": "gdbm.sampling.morph", "relax_trajectory": "gdbm.sampling.refine",
    "learn_order": "gdbm.training.order_policy",
    # evaluation
    "Evaluator": "gdbm.analysis.evaluate", "evaluate_sets": "gdbm.analysis.report",
    "evaluate_files": "gdbm.analysis.report", "Metric": "gdbm.analysis.metrics", "register_metric": "gdbm.analysis.metrics",
    # studies and the demo
    "run_study": "gdbm.study.runner", "run_demo": "gdbm.study.demo",
}
_RENAMED = {"pretrained_models": "available", "register_metric": "register"}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'gdbm' has no attribute {name!r}")
    value = getattr(import_module(_API[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
