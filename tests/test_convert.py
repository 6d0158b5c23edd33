"""RDKit and ASE conversions: formulas, perceived aromaticity, conformers, cells."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from rdkit import Chem
from rdkit.Chem.rdMolDescriptors import CalcMolFormula, CalcNumAromaticRings

from gdbm.data.trajectory import read_frames
from gdbm.utils.errors import InputError
from gdbm.topology.convert import to_ase, to_rdkit
from gdbm.topology.gromacs import read_topology


@pytest.fixture(scope="module")
def sps_top(sps: Path):
    return read_topology(sps / "topol.top")


def aromatic_atoms(mol: Chem.Mol) -> int:
    return sum(a.GetIsAromatic() for a in mol.GetAtoms())


def test_sps_chain(sps, sps_top):
    frames = read_frames(sps / "train_t568" / "aa" / "90.gro")
    mol = to_rdkit(sps_top, frames.positions[0], molecule=3)
    assert mol.GetNumAtoms() == 162
    assert CalcMolFormula(mol) == "C80H82"
    assert CalcNumAromaticRings(mol) == 10 and aromatic_atoms(mol) == 60
    assert mol.GetNumConformers() == 1
    xyz = torch.tensor(mol.GetConformer().GetPositions())  # Angstrom
    assert torch.allclose(xyz, frames.positions[0, 3 * 162:4 * 162].double() * 10, atol=1e-4)


def test_sps_whole_system(sps_top):
    mol = to_rdkit(sps_top)
    assert mol.GetNumAtoms() == 5832 and mol.GetNumConformers() == 0
    assert len(Chem.GetMolFrags(mol)) == 36 and CalcNumAromaticRings(mol) == 360


@pytest.mark.parametrize("name, molecule, formula, rings", [("octane", "L49C", "C8H18", 0),
                                                            ("cumene", "G065", "C9H12", 1)])
def test_small_molecules(shared_data, name, molecule, formula, rings):
    top = read_topology(shared_data / name / f"{molecule}.itp", require_parameters=False)
    mol = to_rdkit(top)
    assert CalcMolFormula(mol) == formula
    assert CalcNumAromaticRings(mol) == rings and aromatic_atoms(mol) == 6 * rings


def test_elements_from_masses_when_missing(shared_data):
    top = read_topology(shared_data / "cumene" / "G065.itp", require_parameters=False)
    blank = replace(top, elements=[""] * top.n_atoms, types=["X"] * top.n_atoms)
    assert CalcMolFormula(to_rdkit(blank)) == "C9H12"
    cg = read_topology(shared_data / "cumene" / "G065_cg.itp", require_parameters=False)
    with pytest.raises(InputError, match="atom 1 .* is not a chemical element"):
        to_rdkit(cg)


def test_ase_cell_is_the_box(sps, sps_top):
    frames = read_frames(sps / "train_t568" / "aa" / "90.gro")
    atoms = to_ase(sps_top, frames.positions[0], frames.boxes[0])
    assert len(atoms) == 5832 and all(atoms.pbc)
    assert atoms.get_chemical_formula() == "C2880H2952"
    assert torch.allclose(torch.tensor(atoms.cell.array), frames.boxes[0].double() * 10, atol=1e-5)
    assert abs(frames.boxes[0, 1, 0]) > 0  # triclinic
    chain = to_ase(sps_top, frames.positions[0], molecule=0)
    assert len(chain) == 162 and not any(chain.pbc)
    assert torch.allclose(torch.tensor(chain.positions), frames.positions[0, :162].double() * 10, atol=1e-4)
