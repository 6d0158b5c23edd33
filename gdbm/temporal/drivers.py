"""Files in, files out: ``gdbm backmap --temporal`` and ``gdbm eval --temporal`` as library functions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from gdbm.data.frame_writer import check_output, write_frames
from gdbm.data.trajectory import Frames, check_particle_count, frame_range, read_frames
from gdbm.utils.errors import InputError

if TYPE_CHECKING:  # OpenMM is imported only where a frame is thermalised
    from gdbm.temporal.thermalize import ThermalizeSettings


def backmap_trajectory(checkpoint: str | Path, cg: str | Path, output: str | Path, *,
                       cg_struct: str | Path | None = None, frames: str | None = None, segments: int = 1,
                       frame_based: bool = False, constrain_hydrogens: bool = False,
                       thermalize: ThermalizeSettings | None = None, seed: int = 0, device: str = "cpu",
                       force: bool = False) -> Frames:
    """Backmap the CG trajectory ``cg`` with a ``gdbm fit-temporal`` checkpoint into ``output``.

    Frame after frame, each AA frame conditioned on the previous one, in ``segments`` started
    from the library; ``frame_based``: the library baseline instead. ``frames``: ``"START:STOP"``;
    ``thermalize``: a short restrained Langevin run per generated frame. Returns the frames written.
    """
    from gdbm.temporal.sample import TemporalBackmapper
    from gdbm.temporal.sample import frame_based as place_from_library

    output = check_output(output, force=force)  # suffix, folder, existing file: before any work
    backmapper = TemporalBackmapper.from_checkpoint(checkpoint, device)
    system = backmapper.system
    cg_frames = read_frames(cg, cg_struct)
    check_particle_count(cg_frames, system.n_beads, f"the checkpoint {checkpoint}", cg)
    if frames:
        cg_frames = cg_frames.subset(frame_range(frames, len(cg_frames)))
    refine = None
    if thermalize is not None:
        from gdbm.temporal.thermalize import Thermalizer

        refine = Thermalizer(system, thermalize)
    try:
        if frame_based:
            aa = place_from_library(backmapper.library, cg_frames.positions, constrain_hydrogens, refine)
        else:
            aa = backmapper.backmap(cg_frames.positions, segments, seed, constrain_hydrogens, refine=refine)
    finally:
        if refine is not None:
            refine.close()
    out = Frames(aa, torch.zeros(len(aa), 3, 3), list(cg_frames.labels), system.names, system.resnames,
                 system.resids)
    write_frames(output, out, force=force)
    return out


def _system_xml(path: str | Path) -> str:
    """The OpenMM System XML in ``path``; an input error for anything else."""
    xml = Path(path).read_text() if Path(path).is_file() else None
    if xml is None or "<System" not in xml[:2000]:
        raise InputError("with --temporal, --top must be an OpenMM System XML (system.xml of gdbm datagen dipeptide)",
                         path)
    return xml


def _generated_positions(sets: dict[str, str | Path], reference: Frames, ref: str | Path,
                         structure: str | Path | None) -> dict[str, torch.Tensor]:
    """``{name: [T, n, 3]}`` of every generated trajectory, checked against the reference."""
    generated = {}
    for name, path in sets.items():
        frames = read_frames(path, structure)
        check_particle_count(frames, reference.n_particles, f"the reference {ref}", path)
        if len(frames) != len(reference):
            raise InputError(f"holds {len(frames)} frames, the reference {len(reference)}; backmap the same CG frames",
                             path)
        generated[name] = frames.positions
    return generated


def evaluate_trajectories(system_xml: str | Path, ref: str | Path, generated: dict[str, str | Path],
                          output: str | Path, *, ref_struct: str | Path | None = None, frames: str | None = None,
                          lag_ps: float = 1.0, segments: int = 1, temperature: float = 300.0, msm_lag: int = 5,
                          clusters: int = 100, timescales: int = 3, force: bool = False) -> dict:
    """Evaluate generated trajectories against the reference ``ref`` as whole trajectories (Sec. 8.3).

    Energies from the OpenMM System ``system_xml``, phi/psi free-energy surfaces, intra-frame
    velocities (``lag_ps`` apart; velocities across the starts of ``segments`` left out) and,
    with ``msm_lag`` > 0 frames, MSM implied timescales (``clusters`` k-means states). Writes
    ``metrics.json``, ``summary.md`` and plots into ``output``; returns the metrics.
    """
    from gdbm.temporal.energy import OpenMMEnergy
    from gdbm.temporal.metrics import compare, torsion_atoms
    from gdbm.temporal.report import write_report

    out = Path(output)
    if (out / "metrics.json").exists() and not force:
        raise InputError("holds an evaluation; pass --force to overwrite", out)
    xml = _system_xml(system_xml)
    reference = read_frames(ref, ref_struct)
    if frames:
        reference = reference.subset(frame_range(frames, len(reference)))
    sets = _generated_positions(generated, reference, ref, ref_struct)
    energy = OpenMMEnergy(xml)
    energies = {k: energy(v)[0] for k, v in {"reference": reference.positions, **sets}.items()}
    msm = {"lag": msm_lag, "n_clusters": clusters, "n_timescales": timescales} if msm_lag else None
    metrics, observations = compare(reference.positions, sets, reference.names, reference.resids, energies,
                                    torsion_atoms(xml), lag_ps, segments, msm)
    header = (f"Reference {ref} ({len(reference)} frames, {lag_ps} ps apart); energies from {system_xml}; "
              f"MSM: k-means with {clusters} states on (cos, sin) of phi/psi, lag {msm_lag} frames "
              f"(deeptime).\n\n")
    write_report(metrics, observations, out, temperature, header, force)
    return metrics
