"""AA forces projected onto CG beads (thesis Eq. 6.3) and their divergence in gdbm eval."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gdbm.analysis.evaluate import Evaluator, compare
from gdbm.analysis.forces import POOLED, atom_shares, project_forces
from gdbm.cli.main import main
from gdbm.data import read_frames
from gdbm.physics.energy import EnergyModel, energy_and_forces
from gdbm.topology.system import load_mapped_system


@pytest.fixture(scope="module")
def fritz(two_chains: Path, sps: Path):
    """Two sPS chains with the mapping that made the CG frames (shared backbone CH atoms, partial)."""
    return load_mapped_system(two_chains / "topol.top", sps / "PS1_cg_fritz.map", two_chains / "PS1_cg.itp")


def test_shared_atoms_split_their_force_by_share(fritz):
    mapping = fritz.mapping
    shares = atom_shares(mapping)
    holders_per_atom = torch.bincount(mapping.membership[:, 0], minlength=mapping.n_atoms)
    atom = int(torch.nonzero(holders_per_atom == 2)[0])  # a backbone CH, half in each of two beads
    forces = torch.zeros(1, mapping.n_atoms, 3, dtype=torch.float64)
    forces[0, atom] = torch.tensor([2.0, -4.0, 6.0])
    beads = project_forces(forces, mapping)[0]
    holders = mapping.membership[mapping.membership[:, 0] == atom, 1]
    assert len(holders) == 2 and shares[mapping.membership[:, 0] == atom].sum() == pytest.approx(1.0)
    for bead in holders:
        assert torch.allclose(beads[bead], torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    others = torch.ones(mapping.n_beads, dtype=torch.bool)
    others[holders] = False
    assert beads[others].abs().max() == 0


def test_bead_forces_of_a_molecule_add_up_to_its_mapped_atoms_forces(fritz, two_chains: Path):
    frame = read_frames(two_chains / "aa.gro")
    _, forces = energy_and_forces(EnergyModel(fritz.aa), frame.positions.double(), frame.boxes.double())
    beads = project_forces(forces, fritz.mapping)[0]  # [n_beads, 3]
    shares = torch.zeros(fritz.aa.n_atoms, dtype=torch.float64).index_add_(
        0, fritz.mapping.membership[:, 0], atom_shares(fritz.mapping))  # [n_atoms] in (0, 1]
    for molecule in range(fritz.aa.n_molecules):
        atoms = fritz.aa.molecule == molecule
        own = fritz.mapping.bead_molecule == molecule
        expected = (forces[0, atoms] * shares[atoms].unsqueeze(-1)).sum(0)
        assert torch.allclose(beads[own].sum(0), expected, atol=1e-8)
    # a mapping that holds every atom wholly (DBM's PS1.map): a molecule's beads carry its net force
    full = load_mapped_system(two_chains / "topol.top", two_chains / "PS1.map", two_chains / "PS1_cg.itp")
    beads_full = project_forces(forces, full.mapping)[0]
    for molecule in range(full.aa.n_molecules):
        net = forces[0, full.aa.molecule == molecule].sum(0)
        assert torch.allclose(beads_full[full.mapping.bead_molecule == molecule].sum(0), net, atol=1e-8)
    # a bead of unshared atoms (a phenyl) gets the plain sum of its atoms' forces
    phenyl = fritz.mapping.bead_labels.index("SC")
    atoms = fritz.mapping.membership[fritz.mapping.membership[:, 1] == phenyl, 0]
    assert torch.allclose(beads[phenyl], forces[0, atoms].sum(0))


def test_force_divergence_of_a_set_with_itself_is_zero(fritz, two_chains: Path):
    frame = read_frames(two_chains / "aa.gro")
    ev = Evaluator(fritz.aa, mapping=fritz.mapping, per_type_rdf=False, forces=True)
    obs = ev.observe(frame)
    assert set(obs.bead_forces) == {POOLED, *fritz.mapping.bead_types}
    assert obs.bead_forces[POOLED].numel() == fritz.mapping.n_beads
    metrics = compare(obs, obs)
    assert metrics["force_jsd/all"] == 0.0
    assert 0 < metrics["bead_force_p99"] <= metrics["bead_force_max"]
    moved = frame.positions.clone()
    moved[0, 5] += 0.05  # one ring atom pushed into its neighbours: its bead's force changes
    shifted = ev.observe(type(frame)(moved, frame.boxes, frame.labels, frame.names, frame.resnames, frame.resids))
    assert compare(obs, shifted)["force_jsd/all"] > 0


def test_eval_forces_needs_a_mapping(two_chains: Path, tmp_path: Path, capsys):
    code = main(["eval", "--top", str(two_chains / "topol.top"), "--ref", str(two_chains / "aa.gro"),
                 "--gen", f"x={two_chains / 'aa.gro'}", "--forces", "-o", str(tmp_path / "e")])
    assert code == 2 and "--cg-map" in capsys.readouterr().err
