"""Reading coordinate frames through MDAnalysis, in nm, with triclinic boxes (writing them:
:mod:`gdbm.data.frame_writer`).

Frames are held as one float32 tensor ``[F, n, 3]`` plus boxes ``[F, 3, 3]`` whose rows are
the box vectors (GROMACS convention). A folder of ``.gro`` files is read as a trajectory in
natural file-name order (``90.gro`` before ``135.gro``), so AA and CG folders pair by name.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gdbm.utils.errors import InputError
from gdbm.utils.pbc import minimum_image

READ_SUFFIXES = {".gro", ".pdb", ".xtc", ".trr", ".dcd"}
TRAJECTORY_SUFFIXES = {".xtc", ".trr", ".dcd"}


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


MAX_COORDINATE_NM = 1e5  # larger |x| is a unit mix-up or corruption, and overflows .xtc/.gro columns
_LOW_LEVEL = {".xtc": ("MDAnalysis.lib.formats.libmdaxdr", "XTCFile"),
              ".trr": ("MDAnalysis.lib.formats.libmdaxdr", "TRRFile"),
              ".dcd": ("MDAnalysis.lib.formats.libdcd", "DCDFile")}


def _one_line(err: BaseException) -> str:
    """An exception's text on one line (MDAnalysis wraps parser errors over several)."""
    return " ".join(str(err).split()) or type(err).__name__


def _probe_trajectory(path: Path) -> None:
    """Check a .xtc/.trr/.dcd before MDAnalysis's high-level reader opens it: a bad header leaves a
    half-built reader whose ``__del__`` prints a traceback. A .xtc is walked frame by frame in
    Python (MDAnalysis's C code overruns its buffers on a corrupt frame header: abort or segfault);
    .trr/.dcd are opened with MDAnalysis's low-level file class, which fails cleanly."""
    import importlib

    if path.suffix == ".xtc":
        _check_xtc_frames(path)
        return
    module, name = _LOW_LEVEL[path.suffix]
    cls = getattr(importlib.import_module(module), name)
    try:
        with cls(str(path)):
            pass
    except Exception as err:  # noqa: BLE001 - any failure here means "not this format"
        raise InputError(f"not a readable {path.suffix} file ({_one_line(err)}); expected a {path.suffix} "
                         "trajectory", path) from None


_XTC_HEADER = struct.Struct(">iiif9fi")  # magic, natoms, step, time, box, natoms again
_XTC_COMPRESSED = struct.Struct(">f3i3iii")  # precision, minint, maxint, smallidx, byte count


def _check_xtc_frames(path: Path) -> None:
    """Walk the frame headers of a .xtc: each must be whole and sane, the last must end the file."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        offset, k, natoms = 0, 0, None
        while offset < size:
            fh.seek(offset)
            raw = fh.read(_XTC_HEADER.size + _XTC_COMPRESSED.size)
            length, problem = _xtc_frame(raw, natoms)
            if problem is None and offset + length > size:
                problem = f"is cut off ({size - offset} of its {length} bytes are there)"
            if problem and k == 0 and "cut off" not in problem:
                raise InputError(f"not a readable .xtc file: its first frame {problem}; expected an .xtc "
                                 "trajectory", path)
            if problem:
                what = "truncated" if "cut off" in problem else "corrupt"
                raise InputError(f"{what}: frame {k + 1} (at byte {offset}) {problem}; the first {k} frames are "
                                 "complete, expected whole .xtc frames", path)
            natoms = natoms or _XTC_HEADER.unpack_from(raw)[1]
            offset, k = offset + length, k + 1
    if k == 0:
        raise InputError("is empty; expected .xtc frames", path)
    _decode_xtc_safely(path)


def _decode_xtc_safely(path: Path) -> None:
    """Decode every frame with OpenMM's .xtc reader, which reports corrupt compressed coordinates;
    MDAnalysis's decoder writes past its buffers on them (heap corruption, then an abort)."""
    try:
        from openmm.app.internal import xtc_utils
    except ImportError:  # OpenMM is optional: MDAnalysis alone then decodes
        return
    try:
        xtc_utils.read_xtc(os.fsencode(path))
    except Exception as err:  # noqa: BLE001 - OpenMM raises RuntimeError; any failure means corrupt
        raise InputError(f"corrupt: the compressed coordinates of a frame cannot be decoded ({_one_line(err)}); "
                         "expected an intact .xtc file", path) from None


def _xtc_frame(raw: bytes, natoms: int | None) -> tuple[int, str | None]:
    """The byte length of the .xtc frame starting with ``raw``, or what is wrong with its header
    (``natoms`` from the first frame, None for it)."""
    if len(raw) < _XTC_HEADER.size:
        return 0, f"is cut off ({len(raw)} bytes of its header are there)"
    head = _XTC_HEADER.unpack_from(raw)
    magic, n, n_again = head[0], head[1], head[-1]
    if magic != 1995 or n <= 0 or n_again != n or (natoms is not None and n != natoms):
        expected = "" if natoms is None else f", {natoms} as in the first frame"
        return 0, (f"has magic number {magic} and atom counts {n}/{n_again} (expected 1995 and two equal "
                   f"counts{expected})")
    if n <= 9:
        return _XTC_HEADER.size + 12 * n, None
    if len(raw) < _XTC_HEADER.size + _XTC_COMPRESSED.size:
        return 0, f"is cut off ({len(raw)} bytes of its header are there)"
    precision, *_bounds, smallidx, n_bytes = _XTC_COMPRESSED.unpack_from(raw, _XTC_HEADER.size)
    capacity = 4 * (int(3 * n * 1.2) - 3)  # the C decoder's buffer (xdrfile.c: 1.2 ints per coordinate)
    if not (np.isfinite(precision) and precision > 0) or not 9 <= smallidx < 73 or not 0 <= n_bytes <= capacity:
        return 0, f"has precision {precision:g}, size index {smallidx}, {n_bytes} bytes of coordinates"
    return _XTC_HEADER.size + _XTC_COMPRESSED.size + (n_bytes + 3) // 4 * 4, None


def _disarm_readers(err: BaseException) -> None:
    """Make half-built MDAnalysis readers left in ``err``'s traceback close quietly when collected
    (their ``close`` touches a file handle that was never set and prints "Exception ignored")."""
    from MDAnalysis.coordinates.base import ReaderBase

    tb = err.__traceback__
    while tb is not None:
        obj = tb.tb_frame.f_locals.get("self")
        if isinstance(obj, ReaderBase):
            obj.close = lambda: None
        tb = tb.tb_next


def _open_universe(path: Path, structure: Path | None):
    import MDAnalysis as mda

    if path.suffix in TRAJECTORY_SUFFIXES:
        if structure is None:
            raise InputError(f"a {path.suffix} file carries no names: pass a structure file (.gro/.pdb) too", path)
        _probe_trajectory(path)
        return mda.Universe(str(structure), str(path))
    return mda.Universe(str(path))


def _universe(path: Path, structure: Path | None, shown: Path):
    """An MDAnalysis Universe of ``path`` (names from ``structure``); any parser failure -> an
    InputError naming ``shown`` (the user's file when ``path`` is a cleaned copy)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _open_universe(path, structure)
        except InputError:
            raise
        except Exception as err:  # noqa: BLE001 - a parser failing on bad input, whatever its type
            _disarm_readers(err)
            message = f"cannot read coordinates: {_one_line(err)}"
        raise InputError(message, shown)


@contextmanager
def _cleaned(texts: dict[Path, str]) -> Iterator[dict[Path, Path]]:
    """Temporary copies of files whose text was cleaned (titles with bytes that are not UTF-8)."""
    if not texts:
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="gdbm-clean-") as folder:
        copies = {}
        for k, (original, text) in enumerate(texts.items()):
            copies[original] = Path(folder) / str(k) / original.name
            copies[original].parent.mkdir()
            copies[original].write_text(text, encoding="utf-8")
        yield copies


def _check_coordinates(positions: np.ndarray, path: Path, labels: list[str]) -> None:
    """Finite and not absurd (|x| <= 1e5 nm), else an error naming particle and frame."""
    bad = ~np.isfinite(positions)
    if bad.any():
        f, atom, _ = np.argwhere(bad)[0]
        raise InputError(f"non-finite coordinate (NaN or inf) for particle {atom + 1} in frame {labels[f]}; "
                         "expected finite numbers", path)
    huge = np.abs(positions) > MAX_COORDINATE_NM
    if huge.any():
        f, atom, k = np.argwhere(huge)[0]
        raise InputError(f"coordinate {float(positions[f, atom, k]):.6g} nm for particle {atom + 1} in frame "
                         f"{labels[f]}; expected |x| <= {MAX_COORDINATE_NM:g} nm (a unit mix-up or a corrupt file?)",
                         path)


def _box_problem(box: np.ndarray) -> str | None:
    """Why a box ``[3, 3]`` (rows = vectors, nm) is unusable, or None; an all-zero box is "no box"."""
    if not np.isfinite(box).all():
        return "holds non-finite numbers"
    if np.abs(box).max() > MAX_COORDINATE_NM:
        return f"has a vector longer than {MAX_COORDINATE_NM:g} nm"
    lengths = np.linalg.norm(box, axis=1)
    volume = abs(float(np.linalg.det(box.astype(np.float64))))
    if lengths.min() == 0 or volume <= 1e-6 * float(np.prod(lengths)):
        return f"is singular (vector lengths {', '.join(f'{v:.4g}' for v in lengths)} nm, volume {volume:.4g} nm^3)"
    diagonal = np.diag(box)
    if (diagonal < 0).any():
        return f"has a negative length on its diagonal ({', '.join(f'{v:.4g}' for v in diagonal)} nm)"
    return None


def _check_boxes(boxes: np.ndarray, path: Path, labels: list[str], allow_no_box: bool | None) -> None:
    """Every box usable; frames without a box (all zero) only as ``allow_no_box`` says (see read_frames)."""
    missing = ~boxes.any(axis=(1, 2))
    for f in np.flatnonzero(~missing):
        problem = _box_problem(boxes[f])
        if problem:
            raise InputError(f"the box of frame {labels[f]} {problem}; expected three independent box vectors "
                             "(or no box at all for a non-periodic system)", path)
    if not missing.any() or allow_no_box is True:
        return
    f = int(np.flatnonzero(missing)[0])
    if allow_no_box is False:
        raise InputError(f"frame {labels[f]} has no box (all zero); expected a periodic box in every frame", path)
    if not missing.all():
        raise InputError(f"frame {labels[f]} has no box (all zero) while other frames have one; expected a box "
                         "in every frame or in none", path)


def _check_gro_lines(path: Path, text: str) -> None:
    """Validate the fixed-column layout of a .gro file so a bad line is reported by number."""
    lines = text.splitlines()
    if len(lines) < 3:
        raise InputError("a .gro file needs a title, an atom count and a box line", path)
    try:
        n = int(lines[1].strip())
    except ValueError:
        raise InputError(f"expected the number of atoms, got {lines[1].strip()!r}", path, 2) from None
    if n < 1:
        raise InputError(f"expected a positive number of atoms, got {n}", path, 2)
    if len(lines) < n + 3:
        raise InputError(f"header says {n} atoms but the file has only {len(lines) - 3} atom lines", path, 2)
    _check_gro_tail(path, lines, n)
    for i in range(2, n + 2):
        line = lines[i]
        try:
            int(line[15:20])
            float(line[20:28]), float(line[28:36]), float(line[36:44])
        except (ValueError, IndexError):
            raise InputError("expected a .gro atom line: residue number (cols 1-5), names, atom number, "
                             f"x y z in %8.3f columns; got {line!r}", path, i + 1) from None
    box = lines[n + 2].split()
    if len(box) not in (3, 9) or not all(_is_number(b) for b in box):
        raise InputError(f"expected a box line of 3 or 9 numbers, got {lines[n + 2]!r}", path, n + 3)


def _is_number(word: str) -> bool:
    """A finite decimal number as a .gro box line holds it."""
    try:
        return bool(re.fullmatch(r"[-+0-9.eE]+", word)) and np.isfinite(float(word))
    except ValueError:
        return False


def _check_gro_tail(path: Path, lines: list[str], n: int) -> None:
    """Nothing after the box line: a second frame (title, atom count, ...) or a header atom count too small."""
    rest = [line for line in lines[n + 3:] if line.strip()]
    if not rest:
        return
    if len(rest) >= 3 and lines[n + 4].strip().isdigit():
        # MDAnalysis would silently read the first frame only
        raise InputError("more than one frame in a .gro file; expected one frame per .gro (a folder of .gro "
                         "files is a trajectory) or an .xtc/.pdb trajectory", path, n + 4)
    raise InputError(f"header says {n} atoms but the file has {n + len(rest)} atom lines before its box line "
                     f"(line {len(lines)}); expected {n} atom lines and then the box line", path, 2)


def _read_gro_box(text: str) -> np.ndarray:
    """The box of a .gro file exactly as written (MDAnalysis goes through angles)."""
    last = text.splitlines()[-1].split()
    v = [float(x) for x in last] + [0.0] * (9 - len(last))
    box = np.zeros((3, 3))
    box[0, 0], box[1, 1], box[2, 2] = v[0], v[1], v[2]
    box[0, 1], box[0, 2], box[1, 0], box[1, 2], box[2, 0], box[2, 1] = v[3:9]
    return box


_PDB_FREE_TEXT = (b"HEADER", b"TITLE ", b"COMPND", b"SOURCE", b"KEYWDS", b"AUTHOR", b"REMARK", b"JRNL  ")


def _is_free_text(suffix: str, index: int, line: bytes) -> bool:
    """Whether a line is a title or remark (any bytes read, undecodable ones replaced)."""
    return index == 0 if suffix == ".gro" else line[:6] in _PDB_FREE_TEXT


def _decode(path: Path) -> tuple[str, bool]:
    """A .gro/.pdb file's text: titles and remarks decoded with replacement, every other line strictly
    as UTF-8 (an error names the line). Returns the text and whether anything was replaced."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        pass
    out = []
    for i, line in enumerate(raw.split(b"\n")):
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError as err:
            if not _is_free_text(path.suffix, i, line):
                raise InputError(f"byte 0x{line[err.start]:02x} at column {err.start + 1} is not UTF-8 text; "
                                 f"expected a text {path.suffix} file", path, i + 1) from None
            out.append(line.decode("utf-8", errors="replace"))
    return "\n".join(out), True


def _texts(*paths: Path | None) -> dict[Path, str]:
    """Checks .gro/.pdb files as text (line layout of a .gro); returns the cleaned text of each one
    that needed it (a title with bytes that are not UTF-8), to be read instead of the file."""
    cleaned = {}
    for p in paths:
        if p is None or p.suffix not in (".gro", ".pdb"):
            continue
        text, replaced = _decode(p)
        if p.suffix == ".gro":
            _check_gro_lines(p, text)
        if replaced:
            cleaned[p] = text
    return cleaned


def _read_all(u, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``[F, n, 3]`` and boxes ``[F, 3, 3]`` in nm of every frame, or an error naming the
    first frame that cannot be read (a truncated or corrupt file)."""
    from MDAnalysis.lib.mdamath import triclinic_vectors

    n_frames = len(u.trajectory)
    positions = np.zeros((n_frames, u.atoms.n_atoms, 3), dtype=np.float32)
    boxes = np.zeros((n_frames, 3, 3), dtype=np.float64)
    done, why, extra = 0, "the file ends early", 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for f, ts in enumerate(u.trajectory):
                positions[f] = ts.positions / 10.0
                if ts.dimensions is not None:
                    boxes[f] = triclinic_vectors(ts.dimensions) / 10.0
                done = f + 1
                if done == n_frames:
                    extra = _bytes_after_last_frame(u.trajectory, path)
        except Exception as err:  # noqa: BLE001 - a reader failing on a corrupt frame, whatever its type
            why = _one_line(err)
    if extra:
        raise InputError(f"truncated: frame {n_frames + 1} of {n_frames + 1} could not be read (the file ends "
                         f"{extra} bytes into it); the first {n_frames} frames are complete (a cut-off or corrupt "
                         "file?)", path)
    if done < n_frames:
        raise InputError(f"truncated: frame {done + 1} of {n_frames} could not be read ({why}); the first {done} "
                         f"frames are complete, expected {n_frames} (a cut-off or corrupt file?)", path)
    return positions, boxes


def _bytes_after_last_frame(reader, path: Path) -> int:
    """Bytes of a .xtc/.trr/.dcd left after its last complete frame (the start of a frame cut off,
    which MDAnalysis silently drops); 0 for other formats. Call right after reading the last frame."""
    size = path.stat().st_size
    xdr = getattr(reader, "_xdr", None)
    if path.suffix in (".xtc", ".trr") and xdr is not None:
        return size - int(xdr._bytes_tell())
    dcd = getattr(reader, "_file", None)
    if path.suffix == ".dcd" and dcd is not None:
        n = int(reader.n_frames)
        return size - (dcd._header_size + dcd._firstframesize + (n - 1) * dcd._framesize) if n else 0
    return 0


def _read_folder(path: Path, allow_no_box: bool | None) -> Frames:
    """A folder of .gro files as one trajectory, in natural file-name order."""
    files = sorted((p for p in path.iterdir() if p.suffix == ".gro"), key=_natural_key)
    if not files:
        raise InputError("expected a folder of .gro files, found none", path)
    parts = [read_frames(f, allow_no_box=True) for f in files]
    n = {p.n_particles for p in parts}
    if len(n) != 1:
        raise InputError(f"the .gro files of this folder hold different particle counts: {sorted(n)}", path)
    frames = Frames(torch.cat([p.positions for p in parts]), torch.cat([p.boxes for p in parts]),
                    [lab for p in parts for lab in p.labels], parts[0].names, parts[0].resnames, parts[0].resids)
    _check_boxes(frames.boxes.numpy(), path, frames.labels, allow_no_box)
    return frames


def read_frames(path: str | Path, structure: str | Path | None = None, *,
                allow_no_box: bool | None = None) -> Frames:
    """Read a trajectory (``.gro/.pdb/.xtc/.trr/.dcd``) or a folder of ``.gro`` files.

    ``structure`` names a ``.gro``/``.pdb`` file for the particle names of a ``.xtc``/``.trr``/
    ``.dcd`` file. Positions come back in nm as float32; boxes as ``[F, 3, 3]`` box vectors.
    Every frame must be complete, with finite coordinates of at most 1e5 nm, and every box
    must be regular. A frame without a box (all zero: a PDB without CRYST1, a vacuum run)
    is read as such when ``allow_no_box`` is True, refused when it is False (periodic systems),
    and by default accepted only when no frame of the file has a box.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", path)
    if path.is_dir():
        return _read_folder(path, allow_no_box)
    if path.suffix not in READ_SUFFIXES:
        raise InputError(f"unknown coordinate format {path.suffix!r}; expected one of {sorted(READ_SUFFIXES)}", path)
    structure = None if structure is None else Path(structure)
    if structure is not None and not structure.exists():
        raise InputError("no such structure file", structure)
    texts = _texts(path, structure)
    with _cleaned(texts) as copies:
        u = _universe(copies.get(path, path), None if structure is None else copies.get(structure, structure), path)
        positions, boxes = _read_all(u, path)
    if path.suffix == ".gro":
        boxes[0] = _read_gro_box(texts.get(path) or path.read_text())
    n_frames = len(positions)
    labels = [path.name] if n_frames == 1 else [f"{path.name}#{i}" for i in range(n_frames)]
    _check_coordinates(positions, path, labels)
    _check_boxes(boxes, path, labels, allow_no_box)
    atoms = u.atoms
    return Frames(torch.from_numpy(positions), torch.from_numpy(boxes.astype(np.float32)), labels,
                  [str(a) for a in atoms.names], [str(r) for r in atoms.resnames], [int(r) for r in atoms.resids])


def check_particle_count(frames: Frames, expected: int, what: str, path: str | Path, *,
                         names: list[str] | None = None) -> None:
    """Raise an :class:`InputError` when frames and a topology or mapping disagree on size, or,
    given the topology's ``names``, on the particles' names (see :func:`check_particle_names`)."""
    if frames.n_particles != expected:
        raise InputError(f"holds {frames.n_particles} particles per frame but {what} has {expected}", path)
    if names is not None:
        check_particle_names(frames, names, what, path)


def _same_name(found: str, expected: str) -> bool:
    """Equal, or ``found`` is ``expected`` cut to a file's column width (PDB: 4, .gro: 5)."""
    found, expected = found.strip(), expected.strip()
    return found == expected or (len(found) >= 4 and len(expected) > len(found) and expected.startswith(found))


def check_particle_names(frames: Frames, names: list[str], what: str, path: str | Path) -> None:
    """Raise an :class:`InputError` unless the frames name their particles as ``names`` (the
    topology's order): atoms in another order, or another molecule's file, would otherwise be
    computed with the wrong parameters without a word. Names cut to a file's column width pass."""
    differ = [i for i, (found, expected) in enumerate(zip(frames.names, names)) if not _same_name(found, expected)]
    if differ:
        i = differ[0]
        raise InputError(f"particle {i + 1} is named {frames.names[i]!r} but {what} names it {names[i]!r} "
                         f"({len(differ)} of {len(names)} names differ); expected the particles in the "
                         "topology's order, with its names", path)


CG_BOND_LIMIT_NM = 1.2  # bonded beads of any CG model sit well closer (sPS 0.42, cumene 0.38 nm at most)


def check_bonded_distances(frames: Frames, bonds: Tensor, what: str, path: str | Path,
                           limit_nm: float = CG_BOND_LIMIT_NM) -> None:
    """Raise an :class:`InputError` when two beads bonded in ``what`` (``bonds [b, 2]``) are more
    than ``limit_nm`` apart (nearest periodic image) in any frame: the beads are then not in the
    topology's order (bead names are not compared: published CG files often name beads
    differently from their ``.itp``), or the file holds another system."""
    if len(bonds) == 0:
        return
    vectors = frames.positions[:, bonds[:, 1]] - frames.positions[:, bonds[:, 0]]  # [F, b, 3]
    periodic = frames.boxes.flatten(1).any(dim=1)  # [F]
    if bool(periodic.any()):
        vectors[periodic] = minimum_image(vectors[periodic], frames.boxes[periodic])
    lengths = vectors.norm(dim=-1)  # [F, b]
    too_long = lengths > limit_nm
    if bool(too_long.any()):
        f, k = torch.nonzero(too_long)[0].tolist()
        i, j = bonds[k].tolist()
        raise InputError(f"beads {i + 1} and {j + 1}, bonded in {what}, are {float(lengths[f, k]):.3g} nm apart in "
                         f"frame {frames.labels[f]} ({int(too_long.sum())} bonds over {limit_nm:g} nm); expected "
                         "the beads in the CG topology's order", path)
