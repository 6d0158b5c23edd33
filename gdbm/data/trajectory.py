"""Reading and writing coordinate frames through MDAnalysis, in nm, with triclinic boxes.

Frames are held as one float32 tensor ``[F, n, 3]`` plus boxes ``[F, 3, 3]`` whose rows are
the box vectors (GROMACS convention). A folder of ``.gro`` files is read as a trajectory in
natural file-name order (``90.gro`` before ``135.gro``), so AA and CG folders pair by name.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gdbm.utils.atomic_files import atomic_path
from gdbm.utils.errors import InputError

READ_SUFFIXES = {".gro", ".pdb", ".xtc", ".trr", ".dcd"}
TRAJECTORY_SUFFIXES = {".xtc", ".trr", ".dcd"}
WRITE_SUFFIXES = {".gro", ".pdb", ".xtc"}


@dataclass
class Frames:
    """Coordinates of ``F`` frames of ``n`` particles, with per-frame boxes and labels."""

    positions: Tensor  # [F, n, 3] float32, nm
    boxes: Tensor  # [F, 3, 3] float32, nm, rows = box vectors a, b, c
    labels: list[str]  # per frame: "file" or "file#index"
    names: list[str]  # per particle (atom or bead) name
    resnames: list[str]
    resids: list[int]

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    @property
    def n_particles(self) -> int:
        return int(self.positions.shape[1])

    def subset(self, index: slice | list[int]) -> "Frames":
        """A view of some frames (same particles)."""
        idx = list(range(len(self)))[index] if isinstance(index, slice) else list(index)
        return Frames(self.positions[idx], self.boxes[idx], [self.labels[i] for i in idx],
                      self.names, self.resnames, self.resids)


def replicate(frames: Frames, counts: tuple[int, int, int]) -> Frames:
    """The periodic box repeated ``counts`` times along its vectors a, b, c (a larger system of the
    same molecules: image ``(i, j, k)`` is shifted by ``i a + j b + k c``; images follow each other,
    residue ids continue). Triclinic boxes included."""
    if any(c < 1 for c in counts) or not bool(frames.boxes.any(dim=(1, 2)).all()):
        raise InputError(f"replication needs counts >= 1 and a box in every frame, got {counts}")
    grid = torch.cartesian_prod(*(torch.arange(c) for c in counts)).to(frames.boxes.dtype)  # [I, 3] (i, j, k)
    if grid.dim() == 1:
        grid = grid.view(-1, 3)
    shifts = grid @ frames.boxes  # [F, I, 3]
    positions = (frames.positions.unsqueeze(1) + shifts.unsqueeze(2)).flatten(1, 2)  # [F, I n, 3]
    boxes = frames.boxes * torch.tensor(counts, dtype=frames.boxes.dtype).view(1, 3, 1)
    images = len(grid)
    span = max(frames.resids) - min(frames.resids) + 1 if frames.resids else 0
    resids = [r + image * span for image in range(images) for r in frames.resids]
    return Frames(positions, boxes, list(frames.labels), frames.names * images, frames.resnames * images, resids)


def frame_range(spec: str, n_frames: int) -> slice:
    """``"A:B"`` (Python slice syntax, either end may be empty) -> a slice of ``n_frames`` frames, checked."""
    start, sep, stop = spec.partition(":")
    try:
        if not sep:
            raise ValueError
        window = slice(int(start) if start.strip() else None, int(stop) if stop.strip() else None)
    except ValueError:
        raise InputError(f"a frame range is START:STOP (e.g. 0:10), got {spec!r}") from None
    if not range(n_frames)[window]:
        raise InputError(f"frame range {spec!r} selects none of the {n_frames} frames")
    return window


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _universe(path: Path, structure: Path | None):
    import MDAnalysis as mda

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if path.suffix in TRAJECTORY_SUFFIXES:
                if structure is None:
                    raise InputError(f"a {path.suffix} file carries no names: pass a structure file (.gro/.pdb) too", path)
                return mda.Universe(str(structure), str(path))
            return mda.Universe(str(path))
        except InputError:
            raise
        except ValueError as err:
            raise InputError(f"cannot read coordinates: {err}", path) from err
        except (OSError, EOFError, IndexError) as err:
            raise InputError(f"cannot read coordinates: {err}", path) from err


def _check_finite(positions: np.ndarray, path: Path, labels: list[str]) -> None:
    bad = ~np.isfinite(positions)
    if bad.any():
        f, atom, _ = np.argwhere(bad)[0]
        raise InputError(f"non-finite coordinate (NaN or inf) for particle {atom + 1} in frame {labels[f]}; "
                         "expected finite numbers", path)


def _check_gro_lines(path: Path) -> None:
    """Validate the fixed-column layout of a .gro file so a bad line is reported by number."""
    with open(path) as fh:
        lines = fh.read().splitlines()
    if len(lines) < 3:
        raise InputError("a .gro file needs a title, an atom count and a box line", path)
    try:
        n = int(lines[1].strip())
    except ValueError:
        raise InputError(f"expected the number of atoms, got {lines[1].strip()!r}", path, 2) from None
    if len(lines) < n + 3:
        raise InputError(f"header says {n} atoms but the file has only {len(lines) - 3} atom lines", path, 2)
    if any(line.strip() for line in lines[n + 3:]):
        # MDAnalysis would silently read the first frame only
        raise InputError("more than one frame in a .gro file; expected one frame per .gro (a folder of .gro "
                         "files is a trajectory) or an .xtc/.pdb trajectory", path, n + 4)
    for i in range(2, n + 2):
        line = lines[i]
        try:
            int(line[15:20])
            float(line[20:28]), float(line[28:36]), float(line[36:44])
        except (ValueError, IndexError):
            raise InputError("expected a .gro atom line: residue number (cols 1-5), names, atom number, "
                             f"x y z in %8.3f columns; got {line!r}", path, i + 1) from None
    box = lines[n + 2].split()
    if len(box) not in (3, 9) or not all(re.fullmatch(r"[-+0-9.eE]+", b) for b in box):
        raise InputError(f"expected a box line of 3 or 9 numbers, got {lines[n + 2]!r}", path, n + 3)


def _read_gro_box(path: Path) -> np.ndarray:
    """The box of a .gro file exactly as written (MDAnalysis goes through angles)."""
    with open(path) as fh:
        last = fh.read().splitlines()[-1].split()
    v = [float(x) for x in last] + [0.0] * (9 - len(last))
    box = np.zeros((3, 3))
    box[0, 0], box[1, 1], box[2, 2] = v[0], v[1], v[2]
    box[0, 1], box[0, 2], box[1, 0], box[1, 2], box[2, 0], box[2, 1] = v[3:9]
    return box


def read_frames(path: str | Path, structure: str | Path | None = None) -> Frames:
    """Read a trajectory (``.gro/.pdb/.xtc/.trr/.dcd``) or a folder of ``.gro`` files.

    ``structure`` names a ``.gro``/``.pdb`` file for the particle names of a ``.xtc``/``.trr``/
    ``.dcd`` file. Positions come back in nm as float32; boxes as ``[F, 3, 3]`` box vectors.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", path)
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix == ".gro"), key=_natural_key)
        if not files:
            raise InputError("expected a folder of .gro files, found none", path)
        parts = [read_frames(f) for f in files]
        n = {p.n_particles for p in parts}
        if len(n) != 1:
            raise InputError(f"the .gro files of this folder hold different particle counts: {sorted(n)}", path)
        return Frames(torch.cat([p.positions for p in parts]), torch.cat([p.boxes for p in parts]),
                      [lab for p in parts for lab in p.labels], parts[0].names, parts[0].resnames, parts[0].resids)
    if path.suffix not in READ_SUFFIXES:
        raise InputError(f"unknown coordinate format {path.suffix!r}; expected one of {sorted(READ_SUFFIXES)}", path)
    if path.suffix == ".gro":
        _check_gro_lines(path)
    structure = None if structure is None else Path(structure)
    if structure is not None and not structure.exists():
        raise InputError("no such structure file", structure)
    if structure is not None and structure.suffix == ".gro":
        _check_gro_lines(structure)
    u = _universe(path, structure)
    n_frames = len(u.trajectory)
    positions = np.empty((n_frames, u.atoms.n_atoms, 3), dtype=np.float32)
    boxes = np.zeros((n_frames, 3, 3), dtype=np.float64)
    from MDAnalysis.lib.mdamath import triclinic_vectors

    for f, ts in enumerate(u.trajectory):
        positions[f] = ts.positions / 10.0
        if ts.dimensions is not None:
            boxes[f] = triclinic_vectors(ts.dimensions) / 10.0
    if path.suffix == ".gro":
        boxes[0] = _read_gro_box(path)
    labels = [path.name] if n_frames == 1 else [f"{path.name}#{i}" for i in range(n_frames)]
    _check_finite(positions, path, labels)
    atoms = u.atoms
    return Frames(torch.from_numpy(positions), torch.from_numpy(boxes.astype(np.float32)), labels,
                  [str(a) for a in atoms.names], [str(r) for r in atoms.resnames], [int(r) for r in atoms.resids])


def check_particle_count(frames: Frames, expected: int, what: str, path: str | Path) -> None:
    """Raise an :class:`InputError` when frames and a topology or mapping disagree on size."""
    if frames.n_particles != expected:
        raise InputError(f"holds {frames.n_particles} particles per frame but {what} has {expected}", path)


def write_frames(path: str | Path, frames: Frames, force: bool = False) -> Path:
    """Write frames to ``.gro``/``.pdb`` (all frames, as models) or ``.xtc``, atomically.

    The file appears only when complete (temp file + rename); an existing file is kept
    unless ``force``.
    """
    with FrameWriter(path, frames.names, frames.resnames, frames.resids, force, n_frames=len(frames)) as writer:
        writer.write(frames.positions, frames.boxes)
    return Path(path)


class FrameWriter:
    """Writes frames as they come (a long trajectory never held in memory), atomically: the file
    appears complete when the ``with`` block ends without error, and not at all otherwise.

    ``n_frames``: how many frames a ``.gro`` will get (it holds exactly one).
    """

    def __init__(self, path: str | Path, names: list[str], resnames: list[str], resids: list[int],
                 force: bool = False, n_frames: int | None = None):
        self.path = Path(path)
        if self.path.suffix not in WRITE_SUFFIXES:
            raise InputError(f"cannot write {self.path.suffix!r}; expected one of {sorted(WRITE_SUFFIXES)}",
                             self.path)
        if self.path.exists() and not force:
            raise InputError("exists; pass force=True (--force) to overwrite", self.path)
        if self.path.suffix == ".gro" and n_frames != 1:
            raise InputError(f"a .gro file holds one frame, got {n_frames}; write .xtc or .pdb, or one .gro per "
                             f"frame", self.path)
        self.names, self.resnames, self.resids, self.force = names, resnames, resids, force
        self.boxes: list[Tensor] = []  # kept for the per-model CRYST1 records of a .pdb

    def __enter__(self) -> "FrameWriter":
        import MDAnalysis as mda

        n = len(self.names)
        resids = np.asarray(self.resids)
        # residue boundaries: a new residue wherever resid or resname changes
        new_res = np.ones(n, dtype=bool)
        new_res[1:] = (resids[1:] != resids[:-1]) | (np.asarray(self.resnames[1:]) != np.asarray(self.resnames[:-1]))
        starts = np.flatnonzero(new_res)
        self._universe = mda.Universe.empty(n, n_residues=len(starts), atom_resindex=np.cumsum(new_res) - 1,
                                            trajectory=True)
        self._universe.add_TopologyAttr("name", self.names)
        self._universe.add_TopologyAttr("resname", [self.resnames[s] for s in starts])
        self._universe.add_TopologyAttr("resid", [int(resids[s]) for s in starts])
        self._atomic = atomic_path(self.path, self.force)
        self._tmp = self._atomic.__enter__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._writer = mda.Writer(str(self._tmp), n_atoms=n,
                                      **({"multiframe": True} if self.path.suffix == ".pdb" else {}))
        return self

    def write(self, positions: Tensor, boxes: Tensor) -> None:
        """Append frames: ``positions [F, n, 3]`` and ``boxes [F, 3, 3]`` in nm."""
        from MDAnalysis.lib.mdamath import triclinic_box

        u = self._universe
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for x, box in zip(positions.detach().cpu(), boxes.detach().cpu()):
                u.atoms.positions = x.numpy().astype(np.float64) * 10.0
                b = box.numpy().astype(np.float64) * 10.0
                u.dimensions = triclinic_box(b[0], b[1], b[2])
                self._writer.write(u.atoms)
                self.boxes.append(box)

    def __exit__(self, kind, error, traceback) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._writer.close()
        if error is None and self.path.suffix == ".pdb":
            _cryst1_per_model(self._tmp, torch.stack(self.boxes) if self.boxes else torch.zeros(0, 3, 3))
        self._atomic.__exit__(kind, error, traceback)


def _cryst1_per_model(path: Path, boxes: Tensor) -> None:
    """Put each frame's CRYST1 record right before its MODEL record.

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
    out, model = [], 0
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("CRYST1"):
            continue
        if line.startswith("MODEL"):
            out.append(records[model])
            model += 1
        out.append(line)
    path.write_text("".join(out))
