"""Helpers of the bad-input fuzzing suite (tests/test_fuzz_inputs.py) and of
scripts/probe_bad_inputs.py: a two-molecule cut of the shipped cumene example, the mutations
(truncation, byte flips, non-UTF-8 bytes, bad field values) and the CLI contract check.

The contract every bad input must meet (issue 20): exit code 2, exactly one line on stderr
without a traceback, no output file left behind and an existing output never overwritten. A
corruption that happens to be harmless may exit 0; its output must then equal the clean run's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "gdbm" / "resources" / "examples" / "cumene"
SHARED_DATA = REPO.parent / "shared" / "data"
N_MOLECULES = 2  # molecules of the cut-down cumene box (21 atoms, 3 beads each)
ATOMS_PER_MOLECULE, BEADS_PER_MOLECULE = 21, 3
N_XTC_FRAMES = 2


# --- the small system ------------------------------------------------------------------

def _cut_gro(text: str, n: int) -> str:
    lines = text.splitlines()
    return "\n".join([lines[0], f"{n:5d}", *lines[2:2 + n], lines[-1]]) + "\n"


def _cut_xtc(src: Path, structure: Path, dest: Path, n_atoms: int, n_frames: int) -> None:
    """The first ``n_frames`` frames and ``n_atoms`` atoms of ``src`` (MDAnalysis directly, so that
    the reference files do not depend on the reader under test)."""
    import warnings

    import MDAnalysis as mda

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = mda.Universe(str(structure), str(src))
        atoms = u.atoms[:n_atoms]
        with mda.Writer(str(dest), n_atoms=n_atoms) as w:
            for ts in u.trajectory[:n_frames]:
                w.write(atoms)


def make_mini_cumene(folder: Path) -> Path:
    """Two cumene molecules of the shipped example: topol.top, aa.gro, aa.xtc (2 frames), cg.gro,
    cg.xtc (2 frames), CUM.yaml, CUM_cg.itp, cg.top; the frame sizes of the first k frames of each
    .xtc are written to xtc_boundaries.json (bytes; truncation there is a valid shorter file)."""
    folder.mkdir(parents=True, exist_ok=True)
    n_aa, n_cg = N_MOLECULES * ATOMS_PER_MOLECULE, N_MOLECULES * BEADS_PER_MOLECULE
    top = (EXAMPLE / "topol.top").read_text()
    assert "CUM                 64" in top
    (folder / "topol.top").write_text(top.replace("CUM                 64", f"CUM                 {N_MOLECULES}"))
    (folder / "aa.gro").write_text(_cut_gro((EXAMPLE / "aa.gro").read_text(), n_aa))
    (folder / "cg.gro").write_text(_cut_gro((EXAMPLE / "cg.gro").read_text(), n_cg))
    for name in ("CUM.yaml", "CUM_cg.itp"):
        shutil.copyfile(EXAMPLE / name, folder / name)
    (folder / "cg.top").write_text((EXAMPLE / "cg.top").read_text().replace("CUM  64", f"CUM  {N_MOLECULES}"))
    boundaries = {}
    for kind, n in (("aa", n_aa), ("cg", n_cg)):
        _cut_xtc(EXAMPLE / f"{kind}.xtc", EXAMPLE / f"{kind}.gro", folder / f"{kind}.xtc", n, N_XTC_FRAMES)
        sizes = []
        for k in range(1, N_XTC_FRAMES + 1):
            part = folder / f".{kind}_{k}.xtc"
            _cut_xtc(EXAMPLE / f"{kind}.xtc", EXAMPLE / f"{kind}.gro", part, n, k)
            sizes.append(part.stat().st_size)
            part.unlink()
        boundaries[f"{kind}.xtc"] = sizes
    (folder / "xtc_boundaries.json").write_text(json.dumps(boundaries))
    for junk in folder.glob(".*offsets*"):
        junk.unlink()
    return folder


def tiny_fit_config(folder: Path, data: dict[str, str] | None = None) -> str:
    """A one-step voxel experiment on the small system (YAML text, paths relative to ``folder``)."""
    data = data or {"topology": "topol.top", "mapping": "CUM.yaml", "aa": "aa.gro", "cg": "cg.gro"}
    lines = ["data:"] + [f"  {k}: {v}" for k, v in data.items()]
    return "\n".join(lines + [
        "environment: {cutoff: 0.7}",
        "model:",
        "  voxel: {resolution: 4, channels: 4, noise_dim: 4, n_blocks: 1}",
        "training: {batch_size: 2, n_critic: 1, steps: 1, threads: 1}",
    ]) + "\n"


# --- mutations -------------------------------------------------------------------------

def truncate(data: bytes, offset: int) -> bytes:
    return data[:offset]


def flip_byte(data: bytes, offset: int, value: int) -> bytes:
    """``data`` with the byte at ``offset`` replaced by ``value`` (a different byte)."""
    if data[offset] == value:
        value ^= 0xFF
    return data[:offset] + bytes([value]) + data[offset + 1:]


NON_UTF8 = [b"\xe9", b"\xff", b"\xc3", b"\x80", b"\xfe\xff", b"\xed\xa0\x80"]  # Latin-1 e-acute, invalid, lone lead...


def insert_bytes(data: bytes, offset: int, extra: bytes) -> bytes:
    return data[:offset] + extra + data[offset:]


def line_starts(text: bytes) -> list[int]:
    starts = [0]
    starts += [i + 1 for i, b in enumerate(text) if b == 0x0A and i + 1 < len(text)]
    return starts


def replace_line(text: str, index: int, new: str) -> str:
    lines = text.splitlines()
    lines[index] = new
    return "\n".join(lines) + "\n"


def gro_set_field(text: str, atom: int, column: str, value: str) -> str:
    """``.gro`` text with one fixed-width field of atom line ``atom`` replaced (right-aligned)."""
    spans = {"resid": (0, 5), "resname": (5, 10), "name": (10, 15), "index": (15, 20),
             "x": (20, 28), "y": (28, 36), "z": (36, 44)}
    a, b = spans[column]
    lines = text.splitlines()
    line = lines[2 + atom]
    lines[2 + atom] = line[:a] + value.rjust(b - a)[: b - a] + line[b:]
    return "\n".join(lines) + "\n"


# --- running the CLI in-process and checking the contract ----------------------------

@dataclass
class Outcome:
    code: int | None
    out: str
    err: str
    exception: str | None = None  # the traceback of an exception that escaped main()
    files_after: dict[str, bytes] = field(default_factory=dict)

    @property
    def err_lines(self) -> list[str]:
        return stderr_lines(self.err)


_PROGRESS = re.compile(r"^.*\d+%\|.*\|.*\]\s*$")  # a tqdm progress bar (long commands draw them on stderr)


def one_line_error(argv: list[str], capsys, *words: str) -> str:
    """``gdbm argv`` (in this process) exits 2 with one line on stderr, no traceback, saying ``words``."""
    from gdbm.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def stderr_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` without progress bars (tqdm's cursor movements split lines too) and
    without the plain progress lines written instead of bars where stderr is no terminal."""
    from gdbm.utils.progress import PLAIN_LINE

    text = stderr.replace("\x1b[A", "\n").replace("\r", "\n")
    text = re.sub(r"(?<=\])\s+(?=gdbm\b)", "\n", text)  # a message written after an unfinished bar
    return [line.strip() for line in text.splitlines()
            if line.strip() and not _PROGRESS.match(line) and not PLAIN_LINE.match(line.strip())]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> contents), MDAnalysis offset caches left out."""
    files = {}
    if folder.exists():
        for p in sorted(folder.rglob("*")):
            if p.is_file() and "_offsets." not in p.name:
                files[str(p.relative_to(folder))] = p.read_bytes()
    return files


def run_main(argv: Sequence[str], capsys, out_dir: Path) -> Outcome:  # capsys may be None
    """``gdbm.cli.main.main(argv)`` in this process; an escaping exception is recorded, not raised
    (KeyboardInterrupt excepted)."""
    import contextlib
    import io

    from gdbm.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code, exc = None, None
    with contextlib.ExitStack() as stack:
        if capsys is None:
            stack.enter_context(contextlib.redirect_stdout(out))
            stack.enter_context(contextlib.redirect_stderr(err))
        else:
            capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as stop:  # argparse
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except Exception:  # noqa: BLE001 - this is what the suite looks for
            exc = traceback.format_exc()
    if capsys is not None:
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err, exc, snapshot(out_dir))
    return Outcome(code, out.getvalue(), err.getvalue(), exc, snapshot(out_dir))


def contract_violations(outcome: Outcome, before: dict[str, bytes], clean: dict[str, bytes] | None,
                        harmless_ok: bool = True, same: Callable[[dict, dict], bool] | None = None,
                        argparse_error: bool = False) -> list[str]:
    """What ``outcome`` does wrong, as readable strings (empty: the contract holds).

    ``before``: the output folder's files before the run (must be unchanged on error);
    ``clean``: the output folder's files after the uncorrupted run (a harmless corruption's exit 0
    must give them, compared with ``same`` when given); ``harmless_ok``: whether exit 0 is allowed.
    ``argparse_error``: argparse's own usage lines are allowed before the one ``error:`` line.
    """
    problems = []
    if outcome.exception is not None:
        last = outcome.exception.strip().splitlines()[-1]
        return [f"exception escaped main(): {last}"]
    if "Traceback" in outcome.err or "Exception ignored" in outcome.err:
        problems.append("traceback on stderr: " + outcome.err.strip().splitlines()[-1][:200])
    if outcome.code == 2:
        lines = outcome.err_lines
        if argparse_error:
            lines = [line for line in lines if "error:" in line]
        if len(lines) != 1:
            problems.append(f"{len(outcome.err_lines)} lines on stderr, not 1: {outcome.err.strip()[:300]!r}")
        if outcome.files_after != before:
            changed = sorted(set(outcome.files_after) ^ set(before)
                             | {k for k in before if k in outcome.files_after and outcome.files_after[k] != before[k]})
            problems.append(f"output changed on error: {changed}")
    elif outcome.code == 0:
        if not harmless_ok:
            problems.append("exit 0 on bad input (silently accepted)")
        elif clean is not None:
            equal = same(outcome.files_after, clean) if same else outcome.files_after == clean
            if not equal:
                problems.append("exit 0 with an output that differs from the clean run's (silently wrong)")
    else:
        problems.append(f"exit code {outcome.code}, not 2: {outcome.err.strip()[-300:]!r}")
    return problems


def energies_prefix(after: dict[str, bytes], clean: dict[str, bytes], name: str = "energies.json") -> bool:
    """The energy JSON of ``after`` holds a non-empty prefix of the clean run's frames, values equal."""
    if set(after) != {name}:
        return False
    got, want = json.loads(after[name]), json.loads(clean[name])
    return 0 < len(got["frames"]) <= len(want["frames"]) and got["frames"] == want["frames"][: len(got["frames"])]


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default
