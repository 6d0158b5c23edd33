"""The baseline backmapping (placement + OpenMM minimisation) on real sPS frames, with few steps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import openmm as mm
import openmm.unit as unit
import pytest
import torch

from gdbm.baselines.backmap import baseline_backmap
from gdbm.topology.system import find_cg_itp
from gdbm.baselines.minimize import Protocol
from gdbm.baselines.placement import first_guess, place_atoms, placement
from gdbm.cli.main import main
from gdbm.data import read_frames, write_frames
from gdbm.utils.errors import InputError
from gdbm.physics.openmm_system import build_system
from gdbm.topology import expand_mapping, load_mapping, read_topology
from gdbm.topology.mapping import minimum_image

FEW = Protocol(bonded_steps=20, steps=50)


@pytest.fixture(scope="module")
def system(sps: Path):
    """AA topology, expanded Fritz mapping and its placement rule."""
    aa = read_topology(sps / "topol.top")
    cg = read_topology(sps / "PS1_cg.itp", require_parameters=False, n_molecules=36)
    mapping = expand_mapping(load_mapping(sps / "PS1_cg_fritz.map", aa, cg, partial=True), aa, cg)
    return aa, mapping, placement(mapping, aa.connectivity)


@pytest.fixture(scope="module")
def cg_frames(sps: Path):
    return read_frames(sps / "test_t568" / "cg.xtc", sps / "test_t568" / "cg.gro").subset([0, 1])


def openmm_energy(system: mm.System, positions: np.ndarray, box: np.ndarray) -> float:
    ctx = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("CPU"), {"Threads": "1"})
    ctx.setPeriodicBoxVectors(*(mm.Vec3(*row) for row in box))
    ctx.setPositions(positions)
    return ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


# ---------------------------------------------------------------------------- first guess


def test_placement_follows_the_mapping(system, cg_frames):
    aa, mapping, rule = system
    assert (mapping.home_bead < 0).sum() == 4 * 36 and (rule.anchor >= 0).all()  # 4 atoms per chain unmapped
    placed = place_atoms(rule, cg_frames.positions, cg_frames.boxes)  # [2, n_atoms, 3]
    beads = cg_frames.positions.double()
    # a backbone CH shared half/half sits halfway between its two backbone beads
    shared = [a for a in range(162) if len(mapping.membership[mapping.membership[:, 0] == a]) == 2][0]
    b1, b2 = mapping.membership[mapping.membership[:, 0] == shared, 1].tolist()
    half = minimum_image((beads[:, b2] - beads[:, b1]).unsqueeze(1), cg_frames.boxes.double())[:, 0] / 2
    assert torch.allclose(placed[:, shared], beads[:, b1] + half, atol=1e-9)
    # unmapped atoms (chain-end H) sit exactly on the bead they inherited
    lost = torch.nonzero(mapping.home_bead < 0).flatten()
    assert torch.equal(placed[:, lost], beads[:, rule.anchor[lost]])
    # the weighted average is not the centre of mass, but close to it (measured: at most 0.037 nm)
    beads_again = mapping.map_positions(placed.float(), cg_frames.boxes)
    assert minimum_image(beads_again - cg_frames.positions, cg_frames.boxes).norm(dim=-1).max() < 0.045


def test_rings_start_as_hexagons_with_hydrogens_outside(system, cg_frames):
    aa, _, rule = system
    assert len(rule.rings.centre) == 360 and len(rule.rings.atom) == 360 * 11  # C6 ring + 5 H each
    x = first_guess(rule, cg_frames.positions[0], cg_frames.boxes[0], 1e-6, seed=0, frame=0)
    ring = [5, 6, 8, 10, 12, 14]  # C6 C7 C9 C11 C13 C15 of the first monomer (0-based), in ring order
    assert [aa.names[a] for a in ring] == ["C6", "C7", "C9", "C11", "C13", "C15"]
    edges = np.linalg.norm(x[ring] - x[np.roll(ring, 1)], axis=1)
    assert np.allclose(edges, 0.14, atol=1e-4)
    centre = x[ring].mean(0)
    assert np.linalg.norm(x[7] - centre) == pytest.approx(0.24, abs=1e-4)  # H8 on C7, 0.1 nm outside
    ipso = x[5] - centre  # C6 points at C5, its bond out of the phenyl bead (maybe in another image)
    partner = minimum_image(torch.from_numpy(x[4] - centre).view(1, 1, 3), cg_frames.boxes[:1].double()).view(3).numpy()
    assert ipso @ partner / np.linalg.norm(ipso) / np.linalg.norm(partner) == pytest.approx(1.0, abs=1e-6)


def test_first_guess_is_seeded_per_frame(system, cg_frames):
    _, _, rule = system
    a = first_guess(rule, cg_frames.positions[1], cg_frames.boxes[1], 0.05, seed=3, frame=1)
    assert np.array_equal(a, first_guess(rule, cg_frames.positions[1], cg_frames.boxes[1], 0.05, seed=3, frame=1))
    assert not np.array_equal(a, first_guess(rule, cg_frames.positions[1], cg_frames.boxes[1], 0.05, seed=4, frame=1))


def test_unmapped_atom_without_mapped_neighbour_is_an_input_error(system):
    aa, mapping, _ = system
    kept = mapping.membership[:, 0] >= 162  # the first chain loses all its beads
    lonely = replace(mapping, membership=mapping.membership[kept], weights=mapping.weights[kept],
                     home_bead=torch.where(torch.arange(aa.n_atoms) < 162, -1, mapping.home_bead))
    with pytest.raises(InputError, match="bonded to no mapped atom"):
        placement(lonely, aa.connectivity)


# ---------------------------------------------------------------------------- minimisation


def test_nonbonded_force_gives_the_tabulated_energy(sps, system):
    aa, _, _ = system
    ref = read_frames(sps / "test_t568" / "aa.xtc", sps / "test_t568" / "aa.gro").subset([0])
    box, x = ref.boxes[0].double().numpy(), ref.positions[0].double().numpy()
    fast = build_system(aa, box, cutoff=1.0, epsilon_rf=2.5)
    assert "CustomNonbondedForce" not in {type(f).__name__ for f in fast.getForces()}
    tabulated = openmm_energy(build_system(aa, box, cutoff=1.0, epsilon_rf=2.5, tabulated_lj=True), x, box)
    assert openmm_energy(fast, x, box) == pytest.approx(tabulated, rel=1e-6)


@pytest.fixture(scope="module")
def backmapped(system, cg_frames):
    aa, _, rule = system
    return baseline_backmap(aa, rule, cg_frames.subset([0]), FEW, seed=7, progress=False)


def test_output_has_the_topology_atoms(system, backmapped):
    aa, _, _ = system
    out = backmapped.frames
    assert out.positions.shape == (1, 5832, 3) and out.positions.dtype == torch.float32
    assert out.names == aa.names and out.resnames == aa.resnames and out.resids == aa.resids.tolist()
    assert out.labels == ["cg.xtc#0"] and not backmapped.failures


def test_minimisation_lowers_the_energy_and_keeps_the_cg_frame(system, cg_frames, backmapped):
    _, mapping, _ = system
    r = backmapped.results[0]
    assert r.iterations == (20, 50)
    assert r.energy_initial > 1e12 and r.energy_final < 1e5 and r.energy_final < 1e-6 * r.energy_bonded  # 2.5e4
    # measured on this frame and seed after 20 + 50 steps: largest 0.145 nm, mean 0.041 nm per bead
    beads = mapping.map_positions(backmapped.frames.positions, cg_frames.boxes[:1])
    deviation = minimum_image(beads - cg_frames.positions[:1], cg_frames.boxes[:1]).norm(dim=-1)  # [1, n_beads]
    assert deviation.max() < 0.25 and deviation.mean() < 0.06


def thin_second_box(frames):
    """The frames with frame 1's box thinner than twice the 1 nm cutoff: OpenMM refuses it."""
    boxes = frames.boxes.clone()
    boxes[1, 2, 2] = 1.5
    return type(frames)(frames.positions, boxes, frames.labels, frames.names, frames.resnames, frames.resids)


def test_same_seed_same_output_whatever_the_workers(system, cg_frames, backmapped):
    aa, _, rule = system
    again = baseline_backmap(aa, rule, thin_second_box(cg_frames), FEW, seed=7, workers=2, progress=False)
    assert torch.equal(again.frames.positions, backmapped.frames.positions) and again.frames.labels == ["cg.xtc#0"]
    assert [(f.index, f.label) for f in again.failures] == [(1, "cg.xtc#1")]
    assert again.failures[0].reason.startswith("OpenMMException: The periodic box size has decreased")
    other = baseline_backmap(aa, rule, cg_frames.subset([0]), FEW, seed=8, progress=False)
    assert not torch.equal(other.frames.positions, backmapped.frames.positions)


# ---------------------------------------------------------------------------- command line


def cli_args(sps: Path, cg: Path, out: Path, *extra: str) -> list[str]:
    return ["baseline", "--top", str(sps / "topol.top"), "--cg-map", str(sps / "PS1_cg_fritz.map"), "--cg", str(cg),
            "-o", str(out), "--bonded-steps", "20", "--steps", "50", *extra]


def test_cli_reports_a_failed_frame_and_keeps_the_others(sps, cg_frames, tmp_path, capsys):
    frames = thin_second_box(cg_frames)
    cg = write_frames(tmp_path / "cg.pdb", frames)
    out = tmp_path / "aa.xtc"
    assert main(cli_args(sps, cg, out)) == 1
    err = capsys.readouterr().err
    assert "frame 1 (cg.pdb#1) failed: OpenMMException: The periodic box size has decreased to less than twice " \
           "the nonbonded cutoff" in err and "left out 1 of 2 frames (indices 1)" in err
    written = read_frames(out, sps / "test_t568" / "aa.gro")
    assert len(written) == 1 and written.n_particles == 5832
    assert torch.allclose(written.boxes[0], frames.boxes[0], atol=1e-3)


def test_cli_rejects_a_bead_count_mismatch(sps, cg_frames, tmp_path, capsys):
    frames = cg_frames.subset([0])
    cut = type(frames)(frames.positions[:, :700], frames.boxes, frames.labels, frames.names[:700],
                       frames.resnames[:700], frames.resids[:700])
    cg = write_frames(tmp_path / "cg.gro", cut)
    assert main(cli_args(sps, cg, tmp_path / "aa.xtc")) == 2
    err = capsys.readouterr().err
    assert "holds 700 particles per frame but the CG topology" in err and "has 720" in err
    assert not (tmp_path / "aa.xtc").exists()


def test_cli_keeps_an_existing_output(sps, tmp_path, capsys):
    out = tmp_path / "aa.xtc"
    out.write_text("keep")
    assert main(cli_args(sps, sps / "test_t568" / "cg.gro", out)) == 2
    assert "exists; pass --force" in capsys.readouterr().err and out.read_text() == "keep"


def test_cg_itp_found_by_molecule_name(sps, tmp_path):
    assert find_cg_itp(sps / "PS1_cg_fritz.map", sps / "topol.top", ["PS1"]) == sps / "PS1_cg.itp"
    with pytest.raises(InputError, match="pass --cg-itp"):
        find_cg_itp(tmp_path / "x.map", tmp_path / "topol.top", ["PS1"])
