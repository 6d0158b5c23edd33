"""Alanine dipeptide (ACE-ALA-NME) in implicit solvent: the reference system of thesis Sec. 8.2.1.

The molecule is built without any downloaded file: RDKit embeds the heavy atoms from a SMILES
string, they get their PDB names and residues in an OpenMM ``Topology``, and OpenMM's
``Modeller`` adds the hydrogens the force field's templates ask for. The force field is
Amber ff99SB-ILDN (the thesis' choice) with the OBC generalised-Born solvent (``amber99_obc.xml``,
OpenMM's native ``GBSAOBCForce``), no cutoff. Measured on one core here: 320 ns/day on the CPU
platform (its per-step overhead dominates for 22 atoms), 4600 ns/day on the Reference platform,
so the Reference platform runs the MD; amber14 + ``implicit/obc2.xml`` (a ``CustomGBForce``)
ran at 220 ns/day on the CPU platform.

Two OpenMM systems come out of one force field: the MD system (bonds to hydrogen constrained,
as in the thesis) and the energy system (no constraints, every bond term present), which is
the one that scores reference and backmapped frames alike.

The CG model keeps six atoms as beads (thesis: the five backbone C/N atoms and CB):
ACE C, ALA N, CA, C, NME N and ALA CB; every other atom's home bead is the bead it is
bonded to most closely (fewest bonds), which is what backmapping projects with.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from gdbm.utils.progress import tqdm

from gdbm.utils.atomic_files import atomic_path, write_text
from gdbm.data.frame_writer import write_frames
from gdbm.data.trajectory import Frames
from gdbm.utils.errors import InputError
from gdbm.topology.mapfiles import write_yaml
from gdbm.topology.mapping import MoleculeMapping

FORCE_FIELD = ("amber99sbildn.xml", "amber99_obc.xml")
SMILES = "CC(=O)N[C@@H](C)C(=O)NC"  # L-alanine dipeptide, heavy atoms in this order:
HEAVY = [("ACE", "CH3"), ("ACE", "C"), ("ACE", "O"), ("ALA", "N"), ("ALA", "CA"), ("ALA", "CB"),
         ("ALA", "C"), ("ALA", "O"), ("NME", "N"), ("NME", "C")]
HEAVY_BONDS = [(0, 1), (1, 2), (1, 3), (3, 4), (4, 5), (4, 6), (6, 7), (6, 8), (8, 9)]
BEADS = [("ACE", "C"), ("ALA", "N"), ("ALA", "CA"), ("ALA", "C"), ("NME", "N"), ("ALA", "CB")]


def force_field():
    """The OpenMM ``ForceField`` of the reference system."""
    import openmm.app as app

    return app.ForceField(*FORCE_FIELD)


def build(seed: int = 0):
    """A ``Modeller`` holding alanine dipeptide with hydrogens (positions in nm)."""
    import openmm as mm
    import openmm.app as app
    import openmm.unit as unit
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(SMILES))
    if AllChem.EmbedMolecule(mol, randomSeed=seed) != 0:
        raise RuntimeError("RDKit could not embed alanine dipeptide")
    AllChem.MMFFOptimizeMolecule(mol)
    xyz = mol.GetConformer().GetPositions()[: len(HEAVY)] / 10.0  # Angstrom -> nm, heavy atoms first
    top = app.Topology()
    chain = top.addChain()
    residues: dict[str, app.Residue] = {}
    atoms = []
    for resname, name in HEAVY:
        if resname not in residues:
            residues[resname] = top.addResidue(resname, chain)
        element = app.Element.getBySymbol(name[0])
        atoms.append(top.addAtom(name, element, residues[resname]))
    for i, j in HEAVY_BONDS:
        top.addBond(atoms[i], atoms[j])
    modeller = app.Modeller(top, [mm.Vec3(*map(float, p)) for p in xyz] * unit.nanometer)
    modeller.addHydrogens(force_field())
    return modeller


def create_systems(topology) -> tuple:
    """(MD system with H-bond constraints, energy system without constraints), both OBC2, no cutoff."""
    import openmm.app as app

    ff = force_field()
    md = ff.createSystem(topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
    energy = ff.createSystem(topology, nonbondedMethod=app.NoCutoff, constraints=None)
    return md, energy


def bead_atoms(topology) -> list[int]:
    """Atom index of each bead (``BEADS`` order)."""
    index = {(a.residue.name, a.name): a.index for a in topology.atoms()}
    return [index[key] for key in BEADS]


def home_beads(topology, beads: list[int]) -> torch.Tensor:
    """``[n_atoms]`` the bead with the fewest bonds to each atom (ties: the first bead)."""
    n = topology.getNumAtoms()
    hops = np.full((n, n), n + 1)
    np.fill_diagonal(hops, 0)
    for bond in topology.bonds():
        hops[bond[0].index, bond[1].index] = hops[bond[1].index, bond[0].index] = 1
    for k in range(n):  # Floyd-Warshall on 22 atoms, once
        hops = np.minimum(hops, hops[:, k : k + 1] + hops[k : k + 1, :])
    return torch.as_tensor(hops[:, beads].argmin(1))


@dataclass(frozen=True)
class DipeptideRun:
    """Protocol of the reference trajectory (units: ns, ps, K, 1/ps)."""

    length_ns: float = 50.0
    frame_interval_ps: float = 1.0
    equilibration_ps: float = 100.0
    temperature: float = 300.0
    friction: float = 1.0
    timestep_ps: float = 0.002
    chunk_ps: float = 1000.0  # frames per resumable chunk file = chunk_ps / frame_interval_ps
    seed: int = 0
    platform: str = "Reference"

    def check(self) -> None:
        """Raise an :class:`InputError` for a protocol no run can follow."""
        for name in ("length_ns", "frame_interval_ps", "temperature", "friction", "timestep_ps", "chunk_ps"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name.replace('_', ' ')} must be > 0, got {getattr(self, name)}")
        if self.equilibration_ps < 0 or self.seed < 0:
            raise InputError("equilibration and seed must be >= 0")
        if self.frame_interval_ps < self.timestep_ps:
            raise InputError(f"frames ({self.frame_interval_ps} ps) must be at least one time step apart")

    @property
    def steps_per_frame(self) -> int:
        return max(1, round(self.frame_interval_ps / self.timestep_ps))

    @property
    def frames_per_chunk(self) -> int:
        return max(1, round(self.chunk_ps / self.frame_interval_ps))

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.length_ns * 1000.0 / self.frame_interval_ps / self.frames_per_chunk)


def mapping(topology) -> MoleculeMapping:
    """The six-bead CG mapping of alanine dipeptide (one atom per bead, every atom a home bead)."""
    beads = bead_atoms(topology)
    home = home_beads(topology, beads)  # [n_atoms]
    names = [f"{res}_{name}" for res, name in BEADS]
    atoms = list(topology.atoms())
    return MoleculeMapping(
        molecule="ADP", n_atoms=len(atoms), bead_names=names, bead_types=[n for _, n in BEADS],
        bead_labels=["BB"] * 5 + ["SC"], cg_bonds=torch.tensor([[0, 1], [1, 2], [2, 3], [3, 4], [2, 5]]),
        # every atom belongs to its home bead; only the bead atoms with weight (the others with 0)
        membership=torch.stack([torch.arange(len(atoms)), home], 1),
        weights=torch.isin(torch.arange(len(atoms)), torch.tensor(beads)).double(), home_bead=home, prior_types=[a.name for a in atoms],
        align=torch.full((len(beads),), -1), mult=torch.ones(len(beads), dtype=torch.long), center="com",
        source="gdbm datagen dipeptide")


def _frames(positions: np.ndarray, names: list[str], resnames: list[str], resids: list[int]) -> Frames:
    n = len(positions)
    return Frames(torch.from_numpy(positions.astype(np.float32)), torch.zeros(n, 3, 3), [f"t={k}" for k in range(n)],
                  names, resnames, resids)


def _simulation(modeller, system, run: DipeptideRun):
    import openmm as mm
    import openmm.app as app
    import openmm.unit as unit

    integrator = mm.LangevinMiddleIntegrator(run.temperature * unit.kelvin, run.friction / unit.picosecond,
                                             run.timestep_ps * unit.picosecond)
    integrator.setRandomNumberSeed(run.seed + 1)  # OpenMM draws a fresh seed for 0
    return app.Simulation(modeller.topology, system, integrator, mm.Platform.getPlatformByName(run.platform))


def _chunk(simulation, run: DipeptideRun, path: Path) -> None:
    """Run one chunk of frames and store them with the end state (positions, velocities), atomically."""
    import openmm as mm

    positions = np.empty((run.frames_per_chunk, simulation.topology.getNumAtoms(), 3), dtype=np.float32)
    for k in range(run.frames_per_chunk):
        simulation.step(run.steps_per_frame)
        positions[k] = simulation.context.getState(getPositions=True).getPositions(asNumpy=True)._value
    state = mm.XmlSerializer.serialize(simulation.context.getState(getPositions=True, getVelocities=True))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, positions=positions, state=np.array(state))


def generate(out: str | Path, run: DipeptideRun, command: str = "", force: bool = False) -> dict:
    """Simulate alanine dipeptide and write ``aa.pdb/xtc``, ``cg.pdb/xtc``, ``mapping.yaml``, ``system.xml``.

    Production is stored chunk by chunk under ``chunks/`` (each chunk re-seeds the integrator
    from the seed and its number), so rerunning the same command continues an interrupted run.
    """
    import openmm as mm
    import openmm.unit as unit

    run.check()
    out = Path(out)
    settings_file = out / "run.json"
    settings = {k: getattr(run, k) for k in run.__dataclass_fields__}
    if settings_file.exists() and not force:
        # a longer or shorter --ns extends or cuts the same trajectory (chunks are seeded by number)
        old = {k: v for k, v in json.loads(settings_file.read_text())["settings"].items() if k != "length_ns"}
        if old != {k: v for k, v in settings.items() if k != "length_ns"}:
            raise InputError("holds a run with other settings; pass --force to start over", out)
    if force and out.exists():
        for old in out.glob("chunks/*.npz"):
            old.unlink()
    (out / "chunks").mkdir(parents=True, exist_ok=True)
    write_text(settings_file, json.dumps({"settings": settings, "command": command}, indent=1) + "\n")
    modeller = build(run.seed)
    md_system, energy_system = create_systems(modeller.topology)
    write_text(out / "system.xml", mm.XmlSerializer.serialize(energy_system))
    write_yaml(mapping(modeller.topology), out / "mapping.yaml", force=True)
    simulation = _simulation(modeller, md_system, run)
    start = time.time()
    first = out / "chunks" / "equilibrated.npz"
    if not first.exists():
        simulation.context.setPositions(modeller.positions)
        simulation.minimizeEnergy()
        simulation.context.setVelocitiesToTemperature(run.temperature * unit.kelvin, run.seed + 1)
        simulation.step(round(run.equilibration_ps / run.timestep_ps))
        state = mm.XmlSerializer.serialize(simulation.context.getState(getPositions=True, getVelocities=True))
        with atomic_path(first) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, positions=np.zeros((0, modeller.topology.getNumAtoms(), 3), np.float32), state=np.array(state))
    chunks = [out / "chunks" / f"{c:05d}.npz" for c in range(run.n_chunks)]
    for c in tqdm(range(run.n_chunks), desc="dipeptide MD", unit="chunk", disable=None, mininterval=10):
        if chunks[c].exists():
            continue
        with np.load(chunks[c - 1] if c else first) as previous:
            simulation.context.setState(mm.XmlSerializer.deserialize(str(previous["state"])))
        simulation.integrator.setRandomNumberSeed(run.seed * 100003 + c + 2)
        _chunk(simulation, run, chunks[c])
    positions = np.concatenate([np.load(p)["positions"] for p in chunks])[: round(run.length_ns * 1000 / run.frame_interval_ps)]
    atoms = list(modeller.topology.atoms())
    names, resnames = [a.name for a in atoms], [a.residue.name for a in atoms]
    resids = [a.residue.index + 1 for a in atoms]
    beads = bead_atoms(modeller.topology)
    aa = _frames(positions, names, resnames, resids)
    cg = _frames(positions[:, beads], [f"{r}_{n}" for r, n in BEADS], ["ADP"] * len(beads), [1] * len(beads))
    for frames, stem in ((aa, "aa"), (cg, "cg")):
        write_frames(out / f"{stem}.pdb", frames.subset([0]), force=True)
        write_frames(out / f"{stem}.xtc", frames, force=True)
    record = {"settings": settings, "command": command, "frames": len(positions),
              "wall_s_this_call": round(time.time() - start, 1), "force_field": list(FORCE_FIELD),
              "beads": [f"{r}_{n}" for r, n in BEADS]}
    write_text(settings_file, json.dumps(record, indent=1) + "\n")
    return record
