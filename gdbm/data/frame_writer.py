"""Writing coordinate frames (``.gro .pdb .xtc .dcd .trr``) through MDAnalysis, atomically, keeping the system.

What a file keeps comes from :class:`AtomRecords`, built from a :class:`~gdbm.topology.topology.Topology`
(:meth:`AtomRecords.from_topology`) or, without one, from the frames' own names
(:meth:`AtomRecords.from_frames`):

- residues: one per molecule, or the topology's residues where a molecule has several, numbered
  1, 2, ... through the system (``.gro``: the number wraps after 99999, ``.pdb``: after 9999, as
  the formats allow);
- elements: the PDB element column (columns 77-78), blank for particles that are not atoms (CG beads);
- bonds: PDB ``CONECT`` records, every bond of the topology's connectivity (``[bonds]`` and
  ``[constraints]``), at most four partners per record as the PDB format asks. The format's
  5-column serials stop at 99999: a larger system is written without ``CONECT`` and with a
  warning (no hybrid-36: MDAnalysis numbers the ``ATOM`` records by plain truncation, and
  ``CONECT`` serials must match them);
- the box: the ``.gro`` box line, a ``CRYST1`` record before each PDB model, the unit cell of
  ``.xtc``/``.dcd``/``.trr`` frames.

The file appears only when complete (temp file + rename); every frame is checked for finite
coordinates before it is written.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gdbm.data.trajectory import MAX_COORDINATE_NM, Frames
from gdbm.topology.elements import UNKNOWN
from gdbm.topology.topology import Topology
from gdbm.utils.atomic_files import atomic_path, check_output_path
from gdbm.utils.errors import InputError

WRITE_SUFFIXES = {".gro", ".pdb", ".xtc", ".dcd", ".trr"}
SINGLE_FRAME_SUFFIXES = {".gro"}
MAX_CONECT_SERIAL = 99999  # PDB CONECT serials are 5 columns wide
_CONECT_PARTNERS = 4  # bonded atoms per CONECT record (PDB v3.3)


@dataclass(frozen=True)
class AtomRecords:
    """What a written file says about each atom besides its position.

    ``resids``: the residue number written for each atom; a new residue starts wherever it (or the
    residue name) changes. ``elements``: symbols, ``""`` where unknown. ``bonds``: ``[b, 2]``
    zero-based atom indices (``None``: no bonds known).
    """

    names: list[str]
    resnames: list[str]
    resids: list[int]
    elements: list[str] | None = None
    bonds: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.names)
        lengths = {len(self.resnames), len(self.resids)}
        if self.elements is not None:
            lengths.add(len(self.elements))
        if lengths != {n}:
            raise ValueError(f"per-atom records of unequal length: {n} names, {len(self.resnames)} resnames, "
                             f"{len(self.resids)} resids"
                             + (f", {len(self.elements)} elements" if self.elements is not None else ""))

    @property
    def n_atoms(self) -> int:
        return len(self.names)

    @classmethod
    def from_topology(cls, top: Topology) -> "AtomRecords":
        """Names, residues (one per molecule, or the topology's own residues within a molecule),
        elements and chemical bonds of ``top``."""
        molecule = top.molecule.cpu().numpy()
        resids = top.resids.cpu().numpy()
        resnames = np.asarray(top.resnames, dtype=object)
        new = np.ones(top.n_atoms, dtype=bool)
        new[1:] = (molecule[1:] != molecule[:-1]) | (resids[1:] != resids[:-1]) | (resnames[1:] != resnames[:-1])
        elements = ["" if e in ("", UNKNOWN) else e for e in top.elements]
        bonds = top.connectivity.cpu().numpy().astype(np.int64).reshape(-1, 2)
        return cls(list(top.names), list(top.resnames), (np.cumsum(new)).tolist(), elements, bonds)

    @classmethod
    def from_frames(cls, frames: Frames) -> "AtomRecords":
        """The names and residues ``frames`` were read with; no elements, no bonds."""
        return cls(list(frames.names), list(frames.resnames), [int(r) for r in frames.resids])

    def residue_starts(self) -> np.ndarray:
        """``[n]`` bool: the atoms that begin a residue."""
        resids, resnames = np.asarray(self.resids), np.asarray(self.resnames, dtype=object)
        new = np.ones(self.n_atoms, dtype=bool)
        new[1:] = (resids[1:] != resids[:-1]) | (resnames[1:] != resnames[:-1])
        return new


def atom_records(atoms: AtomRecords | Topology | Frames) -> AtomRecords:
    """``atoms`` as :class:`AtomRecords` (a topology keeps residues, elements and bonds; frames their names)."""
    if isinstance(atoms, AtomRecords):
        return atoms
    if isinstance(atoms, Topology):
        return AtomRecords.from_topology(atoms)
    if isinstance(atoms, Frames):
        return AtomRecords.from_frames(atoms)
    raise TypeError(f"expected AtomRecords, a Topology or Frames, got {type(atoms).__name__}")


def check_output(path: str | Path, n_frames: int | None = None, *, force: bool = True) -> Path:
    """``path`` as a frame file to write, checked before any work: a writable file of a suffix in
    :data:`WRITE_SUFFIXES`, not existing unless ``force``, and a ``.gro`` only for one frame
    (``n_frames``, when known). Else an :class:`InputError`."""
    path = check_output_path(path, WRITE_SUFFIXES)
    if path.exists() and not force:
        raise InputError("exists; pass --force (force=True) to overwrite", path)
    if path.suffix in SINGLE_FRAME_SUFFIXES and n_frames is not None and n_frames != 1:
        raise InputError(f"a {path.suffix} file holds one frame, got {n_frames}; write .xtc, .dcd, .trr or .pdb, "
                         "or one .gro per frame", path)
    return path


def write_frames(path: str | Path, frames: Frames, force: bool = False,
                 atoms: AtomRecords | Topology | None = None) -> Path:
    """Write frames to ``.gro`` (one frame), ``.pdb`` (all frames, as models), ``.xtc``, ``.dcd`` or
    ``.trr``, atomically. ``atoms``: a topology (or its records) whose residues, elements and bonds
    the file keeps; without it, the frames' own names and residues.

    The file appears only when complete (temp file + rename); an existing file is kept unless ``force``.
    """
    records = atom_records(frames if atoms is None else atoms)
    check_writable(frames.positions, frames.boxes, frames.n_particles, path)
    if records.n_atoms != frames.n_particles:
        raise InputError(f"the topology has {records.n_atoms} atoms, the frames {frames.n_particles}", path)
    with FrameWriter(path, records, force, n_frames=len(frames)) as writer:
        writer.write(frames.positions, frames.boxes)
    return Path(path)


def check_writable(positions: Tensor, boxes: Tensor, n_particles: int, path: str | Path, first: int = 0) -> None:
    """Raise an :class:`InputError` naming ``path`` and the frame (counted from ``first``) unless
    ``positions [F, n_particles, 3]`` and ``boxes [F, 3, 3]`` fit and hold finite numbers of at most 1e5 nm."""
    if positions.dim() != 3 or tuple(positions.shape[1:]) != (n_particles, 3) or \
            tuple(boxes.shape) != (positions.shape[0], 3, 3):
        raise InputError(f"refusing to write positions of shape {tuple(positions.shape)} with boxes of shape "
                         f"{tuple(boxes.shape)}; expected [F, {n_particles}, 3] and [F, 3, 3]", path)
    for what, values in (("coordinate", positions), ("box entry", boxes)):
        bad = ~torch.isfinite(values) | (values.abs() > MAX_COORDINATE_NM)
        if bool(bad.any()):
            index = torch.nonzero(bad)[0].tolist()
            particle = f" for particle {index[1] + 1}" if what == "coordinate" else ""
            raise InputError(f"refusing to write {what} {float(values[tuple(index)]):.6g}{particle} in frame "
                             f"{first + index[0]}; expected finite numbers of at most {MAX_COORDINATE_NM:g} nm "
                             "(nothing written)", path)


class FrameWriter:
    """Writes frames as they come (a long trajectory never held in memory), atomically: the file
    appears complete when the ``with`` block ends without error, and not at all otherwise.

    ``atoms``: a :class:`~gdbm.topology.topology.Topology` or :class:`AtomRecords` (residues,
    elements, bonds). ``n_frames``: how many frames a ``.gro`` will get (it holds exactly one).
    """

    def __init__(self, path: str | Path, atoms: AtomRecords | Topology, force: bool = False,
                 n_frames: int | None = None):
        self.path = check_output(path, force=force)
        if self.path.suffix in SINGLE_FRAME_SUFFIXES and n_frames != 1:
            raise InputError(f"a .gro file holds one frame, got {n_frames}; write .xtc, .dcd, .trr or .pdb, or "
                             "one .gro per frame", self.path)
        self.atoms = atom_records(atoms)
        self.force, self.n_frames = force, n_frames
        self.boxes: list[Tensor] = []  # kept for the per-model CRYST1 records of a .pdb
        self.n_written = 0

    @property
    def names(self) -> list[str]:
        return self.atoms.names

    def __enter__(self) -> "FrameWriter":
        import MDAnalysis as mda

        atoms = self.atoms
        n = atoms.n_atoms
        new_res = atoms.residue_starts()
        starts = np.flatnonzero(new_res)
        self._universe = mda.Universe.empty(n, n_residues=len(starts), atom_resindex=np.cumsum(new_res) - 1,
                                            trajectory=True)
        self._universe.add_TopologyAttr("name", atoms.names)
        self._universe.add_TopologyAttr("resname", [atoms.resnames[s] for s in starts])
        self._universe.add_TopologyAttr("resid", [int(atoms.resids[s]) for s in starts])
        if atoms.elements is not None:
            self._universe.add_TopologyAttr("elements", [e or " " for e in atoms.elements])
        self._atomic = atomic_path(self.path, self.force)
        self._tmp = self._atomic.__enter__()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # CONECT records are added by _finish_pdb (MDAnalysis puts all partners on one record);
                # one frame is written without MODEL records (RDKit reads no bonds after an ENDMDL)
                options = {"multiframe": self.n_frames != 1, "bonds": None} if self.path.suffix == ".pdb" else {}
                self._writer = mda.Writer(str(self._tmp), n_atoms=n, **options)
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def write(self, positions: Tensor, boxes: Tensor) -> None:
        """Append frames: ``positions [F, n, 3]`` and ``boxes [F, 3, 3]`` in nm, all checked first
        (:func:`check_writable`): a bad frame raises before any of them is written."""
        from MDAnalysis.lib.mdamath import triclinic_box

        check_writable(positions, boxes, self.atoms.n_atoms, self.path, self.n_written)
        if self.n_frames == 1 and self.n_written + len(positions) > 1:
            raise InputError(f"announced one frame, got {self.n_written + len(positions)}", self.path)
        u = self._universe
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for x, box in zip(positions.detach().cpu(), boxes.detach().cpu()):
                u.atoms.positions = x.numpy().astype(np.float64) * 10.0
                b = box.numpy().astype(np.float64) * 10.0
                u.dimensions = triclinic_box(b[0], b[1], b[2])
                self._writer.write(u.atoms)
                self.boxes.append(box)
                self.n_written += 1

    def __exit__(self, kind, error, traceback) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._writer.close()
            if error is None and self.path.suffix == ".pdb":
                _finish_pdb(self._tmp, torch.stack(self.boxes) if self.boxes else torch.zeros(0, 3, 3),
                            self.atoms.bonds, self.atoms.n_atoms, self.path)
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        self._atomic.__exit__(kind, error, traceback)


def conect_records(bonds: np.ndarray, n_atoms: int) -> list[str]:
    """PDB ``CONECT`` records of ``bonds`` (``[b, 2]`` zero-based): each atom with its partners in
    ascending order, at most four per record (more continue on the next record), so each bond
    appears in the records of both its atoms."""
    partners: list[list[int]] = [[] for _ in range(n_atoms)]
    for i, j in np.asarray(bonds, dtype=np.int64).reshape(-1, 2).tolist():
        if i != j:
            partners[i].append(j)
            partners[j].append(i)
    out = []
    for i, bonded in enumerate(partners):
        bonded = sorted(set(bonded))
        for k in range(0, len(bonded), _CONECT_PARTNERS):
            chunk = bonded[k:k + _CONECT_PARTNERS]
            out.append("CONECT" + "".join(f"{a + 1:5d}" for a in [i, *chunk]) + "\n")
    return out


def _finish_pdb(path: Path, boxes: Tensor, bonds: np.ndarray | None, n_atoms: int, shown: Path) -> None:
    """Put each frame's CRYST1 record right before its MODEL record (a file of one frame, without
    MODEL records: before its first atom), and the bonds as CONECT records before END.

    MDAnalysis writes one CRYST1 for a multi-model PDB, and its reader then assigns it to
    no model (frames read back with a zero box); one CRYST1 per model round-trips.
    """
    from MDAnalysis.coordinates.PDB import PDBWriter
    from MDAnalysis.lib.mdamath import triclinic_box

    placeholder = np.array([1.0, 1.0, 1.0, 90.0, 90.0, 90.0])  # PDB convention for "no cell"
    records = []
    for b in boxes.detach().cpu().numpy().astype(np.float64) * 10.0:
        dims = triclinic_box(b[0], b[1], b[2]) if np.any(b) else placeholder
        records.append(PDBWriter.fmt["CRYST1"].format(box=dims[:3], ang=dims[3:], spacegroup="P 1", zvalue=1))
    conect: list[str] = []
    if bonds is not None and len(bonds):
        if n_atoms > MAX_CONECT_SERIAL:
            warnings.warn(f"{shown}: written without CONECT records (bonds): PDB atom serials stop at "
                          f"{MAX_CONECT_SERIAL}, this system has more atoms; use the topology for its bonds",
                          UserWarning, stacklevel=4)
        else:
            conect = conect_records(bonds, n_atoms)
    lines = path.read_text().splitlines(keepends=True)
    models = any(line.startswith("MODEL") for line in lines)
    out, model = [], 0
    for line in lines:
        if line.startswith("CRYST1"):
            continue
        if line.startswith("MODEL") or (not models and model == 0 and line.startswith(("ATOM", "HETATM"))):
            out.append(records[model])
            model += 1
        if line.startswith("END") and not line.startswith("ENDMDL"):
            out.extend(conect)
            conect = []
        out.append(line)
    out.extend(conect)
    path.write_text("".join(out))
