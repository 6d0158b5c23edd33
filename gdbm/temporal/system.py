"""The molecule a temporal model backmaps: atom names, masses, the CG mapping, the force field.

Everything a checkpoint needs to backmap without other files: :meth:`TemporalSystem.state`
is plain tensors and strings. Positions are ``[..., n_atoms, 3]`` (nm); beads ``[..., n_beads, 3]``.

Local frames: every sample is expressed in a frame fixed by its CG beads (origin at the beads'
centroid, axes from three beads), so the network never sees the molecule's overall rotation or
translation; the thesis removes only the centre of mass. The previous AA frame is expressed in the
*current* frame's axes, so the network sees how the molecule moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from gdbm.utils.errors import InputError


@dataclass
class TemporalSystem:
    """One molecule: names, masses, mapping weights ``[N, n]`` (rows sum to 1), home beads ``[n]``."""

    names: list[str]
    resnames: list[str]
    resids: list[int]
    bead_names: list[str]
    masses: Tensor  # [n] float32
    weights: Tensor  # [N, n] float32, bead = weights @ atoms
    home: Tensor  # [n] long, the bead each atom moves with when projected
    frame_beads: tuple[int, int, int]  # beads (a, b, c): x along b->a, y in the (a, b, c) plane
    system_xml: str  # serialised OpenMM System scoring energies
    h_bonds: Tensor  # [m, 2] long, (heavy atom, hydrogen) of every bond to a hydrogen
    h_lengths: Tensor  # [m] float32, their b0 (nm)

    @property
    def n_atoms(self) -> int:
        return len(self.names)

    @property
    def n_beads(self) -> int:
        return len(self.bead_names)

    def state(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_state(cls, state: dict) -> "TemporalSystem":
        return cls(**{**state, "frame_beads": tuple(state["frame_beads"])})

    @classmethod
    def load(cls, structure: str | Path, mapping: str | Path, system_xml: str | Path,
             frame_beads: tuple[int, int, int] = (1, 2, 3)) -> "TemporalSystem":
        """From an AA structure file (names), a gdbm mapping (complete: every atom a home bead) and an
        OpenMM ``System`` XML (masses, energies)."""
        import openmm as mm

        from gdbm.data.trajectory import read_frames
        from gdbm.topology.mapfiles import load_mapping

        frames = read_frames(structure)
        m = load_mapping(mapping)
        xml = Path(system_xml).read_text()
        try:
            omm = mm.XmlSerializer.deserialize(xml)
        except Exception as err:  # OpenMM raises a bare Exception for bad XML
            raise InputError(f"not an OpenMM System XML: {err}", system_xml) from err
        n = frames.n_particles
        if m.n_atoms != n or omm.getNumParticles() != n:
            raise InputError(f"atom counts disagree: structure {n}, mapping {m.n_atoms}, "
                             f"system {omm.getNumParticles()}", mapping)
        if max(frame_beads) >= m.n_beads or len(set(frame_beads)) != 3:
            raise InputError(f"frame beads {frame_beads} must be three different beads of {m.n_beads}", mapping)
        masses = torch.tensor([omm.getParticleMass(i)._value for i in range(n)], dtype=torch.float64)
        atom, bead = m.membership.T
        w = m.weights * (masses[atom] if m.center == "com" else 1.0)
        dense = torch.zeros(m.n_beads, n, dtype=torch.float64).index_put_((bead, atom), w, accumulate=True)
        dense = dense / dense.sum(1, keepdim=True)
        h_bonds, h_lengths = _hydrogen_bonds(omm, masses)
        return cls(frames.names, frames.resnames, frames.resids, m.bead_names, masses.float(), dense.float(),
                   m.home_bead.clone(), tuple(frame_beads), xml, h_bonds, h_lengths)

    def map(self, positions: Tensor) -> Tensor:
        """CG bead positions: ``[..., n, 3] -> [..., N, 3]``."""
        return self.weights.to(positions) @ positions

    def project(self, positions: Tensor, beads: Tensor) -> Tensor:
        """Move every atom with its home bead until the frame maps exactly onto ``beads`` ``[..., N, 3]``.

        Exact when each atom belongs to its home bead only (as in the dipeptide mapping).
        """
        shift = beads - self.map(positions)  # [..., N, 3]
        return positions + shift[..., self.home.to(positions.device), :]

    def constrain_hydrogens(self, positions: Tensor) -> Tensor:
        """Set every bond to a hydrogen to its ``b0``, moving the hydrogen along the bond (as the reference
        MD's constraints hold them; each hydrogen has one bond): ``[..., n, 3] -> [..., n, 3]``."""
        heavy, hydrogen = self.h_bonds.to(positions.device).T
        bond = positions[..., hydrogen, :] - positions[..., heavy, :]  # [..., m, 3]
        direction = torch.nn.functional.normalize(bond, dim=-1)
        placed = positions[..., heavy, :] + self.h_lengths.to(positions)[:, None] * direction
        out = positions.clone()
        out[..., hydrogen, :] = placed
        return out


def _hydrogen_bonds(system, masses: Tensor) -> tuple[Tensor, Tensor]:
    """(heavy, hydrogen) pairs ``[m, 2]`` and lengths ``[m]`` of the harmonic bonds to atoms under 1.5 u."""
    import openmm as mm

    pairs, lengths = [], []
    for force in system.getForces():
        if isinstance(force, mm.HarmonicBondForce):
            for k in range(force.getNumBonds()):
                i, j, b0, _ = force.getBondParameters(k)
                light = [a for a in (i, j) if masses[a] < 1.5]
                if len(light) == 1:
                    pairs.append((j, i) if light[0] == i else (i, j))
                    lengths.append(b0._value)
    return torch.tensor(pairs, dtype=torch.long).view(-1, 2), torch.tensor(lengths, dtype=torch.float32)


def local_frames(beads: Tensor, frame_beads: tuple[int, int, int]) -> tuple[Tensor, Tensor]:
    """Origin ``[..., 3]`` (bead centroid) and rotation ``[..., 3, 3]`` (columns: the local axes)."""
    a, b, c = (beads[..., k, :] for k in frame_beads)
    e1 = torch.nn.functional.normalize(a - b, dim=-1)
    v = c - b
    e2 = torch.nn.functional.normalize(v - (v * e1).sum(-1, keepdim=True) * e1, dim=-1)
    e3 = torch.linalg.cross(e1, e2)
    return beads.mean(-2), torch.stack([e1, e2, e3], -1)


def to_local(x: Tensor, origin: Tensor, rotation: Tensor) -> Tensor:
    """Lab -> local coordinates: ``[..., P, 3]`` with ``origin [..., 3]``, ``rotation [..., 3, 3]``."""
    return (x - origin.unsqueeze(-2)) @ rotation


def to_lab(x: Tensor, origin: Tensor, rotation: Tensor) -> Tensor:
    """Local -> lab coordinates (inverse of :func:`to_local`)."""
    return x @ rotation.transpose(-1, -2) + origin.unsqueeze(-2)
