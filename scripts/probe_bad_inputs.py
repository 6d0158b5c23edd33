#!/usr/bin/env python
"""Probe ``gdbm`` with bad input as a hostile user would and classify every result (issue 20).

Each probe is a corrupted copy of the shipped cumene example (cut to two molecules, built in a
temporary folder) or a bad argument, for ``energy``, ``backmap``, ``eval``, ``relax`` or
``fit``. Every probe runs in its own process with a timeout and a memory limit, and is
classified as

- ``clear``: exit 2, one line on stderr, no traceback, no output left behind (the contract);
- ``unclear``: exit 2 but more than one line, or output left behind / an existing one changed;
- ``traceback``: a traceback on stderr, or any exit status other than 0 and 2 (a signal included);
- ``silent``: exit 0 on bad input;
- ``hang``: still running at the timeout (killed);
- ``ok`` / ``rejected``: a *valid* input (marked so in the table) that ran / was refused.

By default each probe is a fork of this process after ``gdbm`` has been imported (a second per
probe instead of ~10 s of imports); ``--exec`` runs each as ``python -m gdbm`` instead. Prints a
markdown table and the counts per class.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/probe_bad_inputs.py [--timeout 60] [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fuzz_helpers import gro_set_field, make_mini_cumene, snapshot, stderr_lines, tiny_fit_config  # noqa: E402

MEMORY_LIMIT_GB = 4.0  # on top of what the process holds when the probe starts


@dataclass
class Probe:
    name: str
    command: str
    argv: Callable[["Env"], list[str]]  # gdbm arguments (after the subcommand is included)
    setup: Callable[["Env"], None] | None = None
    valid: bool = False  # a valid input: exit 0 expected
    note: str = ""
    interrupt_after: float | None = None  # send the signal after this many seconds (Ctrl-C, a kill)
    check: Callable[["Env"], str | None] | None = None  # after an exit 0: a class ("silent") or None
    teardown: Callable[["Env"], None] | None = None  # after the run (e.g. unmount a small filesystem)
    interrupt_signal: int = signal.SIGINT


@dataclass
class Env:
    mini: Path  # the clean small system (read-only by convention)
    ckpt: Path  # a one-step model of it
    work: Path  # this probe's input folder
    out: Path  # this probe's output folder
    extra: dict = field(default_factory=dict)

    def put(self, name: str, data: bytes | str) -> Path:
        path = self.work / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path

    def text(self, name: str) -> str:
        return (self.mini / name).read_text()

    def raw(self, name: str) -> bytes:
        return (self.mini / name).read_bytes()


# --- argument builders -------------------------------------------------------------------

def energy(top: str | None = None, traj: str | None = None, struct: str | None = None, extra=(), out="e.json"):
    def argv(e: Env) -> list[str]:
        a = ["energy", "--top", str(e.work / top if top else e.mini / "topol.top"),
             "--aa", str(e.work / traj if traj else e.mini / "aa.gro")]
        if struct:
            a += ["--aa-struct", str(e.mini / struct)]
        return a + (["-o", str(e.out / out)] if out else []) + list(extra)
    return argv


def backmap(top=None, mapping=None, cg=None, cg_struct=None, ckpt=None, extra=(), out="aa_out.gro"):
    def argv(e: Env) -> list[str]:
        a = ["backmap", "--top", str(e.work / top if top else e.mini / "topol.top"),
             "--map", str(e.work / mapping if mapping else e.mini / "CUM.yaml"),
             "--cg", str(e.work / cg if cg else e.mini / "cg.gro"),
             "--checkpoint", str(e.work / ckpt if ckpt else e.ckpt), "-o", str(e.out / out),
             "--candidates", "1", "--gibbs", "0", "--seed", "1"]
        if cg_struct:
            a += ["--cg-struct", str(e.work / cg_struct if (e.work / cg_struct).exists() else e.mini / cg_struct)]
        return a + list(extra)
    return argv


def evaluate(gen="aa.gro", ref=None, extra=(), out="ev"):
    def argv(e: Env) -> list[str]:
        gen_path = e.work / gen if (e.work / gen).exists() else e.mini / gen
        a = ["eval", "--top", str(e.mini / "topol.top"), "--ref", str(e.work / ref if ref else e.mini / "aa.xtc"),
             "--ref-struct", str(e.mini / "aa.gro"), "--gen", f"g={gen_path}", "-o", str(e.out / out)]
        return a + list(extra)
    return argv


def relax(aa=None, cg=None, mapping=None, extra=(), out="relaxed.gro"):
    def argv(e: Env) -> list[str]:
        return ["relax", "--top", str(e.mini / "topol.top"), "--aa", str(e.work / aa if aa else e.mini / "aa.gro"),
                "--cg-map", str(e.work / mapping if mapping else e.mini / "CUM.yaml"),
                "--cg", str(e.work / cg if cg else e.mini / "cg.gro"), "--steps", "2", "-o", str(e.out / out),
                *extra]
    return argv


def fit(config="tiny.yaml", extra=(), out="run"):
    def argv(e: Env) -> list[str]:
        return ["fit", "--config", str(e.work / config), "-o", str(e.out / out), "--steps", "1", *extra]
    return argv


# --- setups ------------------------------------------------------------------------------

def put(name: str, make: Callable[[Env], bytes | str]) -> Callable[[Env], None]:
    return lambda e: e.put(name, make(e)) and None


def gro_field(atom: int, column: str, value: str, src="aa.gro", name="bad.gro"):
    return put(name, lambda e: gro_set_field(e.text(src), atom, column, value))


def gro_line(index: int, value: str, src="aa.gro", name="bad.gro"):
    def make(e: Env) -> str:
        lines = e.text(src).splitlines()
        lines[index] = value
        return "\n".join(lines) + "\n"
    return put(name, make)


def replaced(src: str, old: str, new: str, name: str | None = None):
    def make(e: Env) -> str:
        text = e.text(src)
        assert old in text, (src, old)
        return text.replace(old, new, 1)
    return put(name or "bad_" + src, make)


def truncated(src: str, fraction: float | None = None, offset: int | None = None, name: str | None = None):
    def make(e: Env) -> bytes:
        data = e.raw(src) if (e.mini / src).exists() else e.ckpt.read_bytes()
        cut = offset if offset is not None else int(fraction * len(data))
        return data[:cut]
    return put(name or "cut_" + Path(src).name, make)


def garbage(name: str, size: int = 3000):
    return put(name, lambda e: bytes((i * 131 + 7) % 256 for i in range(size)))


def config(edit: Callable[[str], str] = lambda t: t, name="tiny.yaml"):
    def make(e: Env) -> str:
        text = tiny_fit_config(e.mini)
        for f in ("topol.top", "CUM.yaml", "aa.gro", "cg.gro"):
            text = text.replace(f": {f}", f": {e.mini / f}")
        return edit(text)
    return put(name, make)


def torch_object(name: str, obj_factory):
    def setup(e: Env) -> None:
        import torch

        torch.save(obj_factory(), e.work / name)
    return setup


def both(*setups):
    def setup(e: Env) -> None:
        for s in setups:
            s(e)
    return setup


def existing(name: str, content: str = "keep me\n"):
    def setup(e: Env) -> None:
        (e.out / name).parent.mkdir(parents=True, exist_ok=True)
        (e.out / name).write_text(content)
    return setup


def shifted_beads(e: Env) -> None:
    """The whole example with its CG bead coordinates shifted by one bead (names kept): bead i at bead
    i+1's place, so each molecule's last bead sits on the next molecule's first: beads out of order."""
    full_example(e)
    lines = (e.work / "cg.gro").read_text().splitlines()
    atoms = lines[2:-1]
    coords = [line[20:44] for line in atoms]
    coords = coords[1:] + coords[:1]
    e.put("shifted.gro", "\n".join(lines[:2] + [a[:20] + c + a[44:] for a, c in zip(atoms, coords)]
                                    + lines[-1:]) + "\n")


def full_disk(e: Env) -> None:
    """A 64 KiB filesystem mounted at out/full and filled to the last byte (needs root; else the probe fails)."""
    target = e.out / "full"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)], check=True)
    fd = os.open(target / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"x" * 512):
            pass
    except OSError:  # ENOSPC: full
        pass
    finally:
        os.close(fd)


def unmount(e: Env) -> None:
    subprocess.run(["umount", str(e.out / "full")], check=False)


def full_example(e: Env) -> None:
    """The whole shipped example (64 molecules, 40 frames) in the probe's input folder."""
    from fuzz_helpers import EXAMPLE

    for name in ("topol.top", "CUM.yaml", "CUM_cg.itp", "cg.xtc", "cg.gro"):
        shutil.copyfile(EXAMPLE / name, e.work / name)


FULL_JOB = dict(top="topol.top", mapping="CUM.yaml", cg="cg.xtc", cg_struct="cg.gro", out="full.xtc",
                extra=("--frames", "0:2"))


FULL_JOB_OWN_MODEL = {**FULL_JOB, "ckpt": "model.pt"}


def _signals_default() -> None:
    """In a child before exec: SIGINT and SIGTERM as a terminal would deliver them (a script started
    with nohup or in the background has SIGINT ignored, and its children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def interrupted_job(e: Env, job: dict = FULL_JOB) -> Path:
    """The full example's first two CG frames backmapped, interrupted (SIGINT) once frame 0 is kept;
    returns the part of frame 0."""
    full_example(e)
    shutil.copyfile(e.ckpt, e.work / "model.pt")
    argv = backmap(**job)(e)
    with open(e.work / "interrupted.err", "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gdbm", "--threads", "1", *argv], stdout=subprocess.DEVNULL,
                                stderr=err, env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=_signals_default)
    parts = e.out / "full.xtc.parts"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not list(parts.glob("frame_*.pt")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    kept = sorted(parts.glob("frame_*.pt"))
    if not kept:
        raise RuntimeError("the interrupted job kept no part: " + (e.work / "interrupted.err").read_text()[-500:])
    return kept[0]


def stale_parts(e: Env) -> None:
    """An interrupted job, then CG frame 0 of its input moved by 1 nm."""
    interrupted_job(e)
    import MDAnalysis as mda

    u = mda.Universe(str(e.work / "cg.gro"), str(e.work / "cg.xtc"))
    with mda.Writer(str(e.work / "cg_new.xtc"), n_atoms=u.atoms.n_atoms) as w:
        for i, ts in enumerate(u.trajectory):
            if i == 0:
                u.atoms.positions = u.atoms.positions + 10.0  # Angstrom: 1 nm along x, y and z
            w.write(u.atoms)
    os.replace(e.work / "cg_new.xtc", e.work / "cg.xtc")


def stale_frame_reused(e: Env) -> str | None:
    """After an exit 0: 'silent' when output frame 0 sits on the old CG frame 0 (1 nm away from the new)."""
    import numpy as np
    from MDAnalysis.coordinates.XTC import XTCReader

    aa = XTCReader(str(e.out / "full.xtc"))
    cg = XTCReader(str(e.work / "cg.xtc"))
    shift = aa[0].positions.mean(axis=0) - cg[0].positions.mean(axis=0)
    return "silent" if float(np.linalg.norm(shift)) > 5.0 else None  # Angstrom


def stale_checkpoint(e: Env) -> None:
    """An interrupted job, then its checkpoint replaced at the same path by another model."""
    import torch

    interrupted_job(e, FULL_JOB_OWN_MODEL)
    state = torch.load(e.work / "model.pt", weights_only=False, map_location="cpu")
    weights = state["generator"]
    name = next(k for k, v in weights.items() if torch.is_tensor(v) and v.is_floating_point())
    weights[name] = weights[name] + 0.05
    torch.save(state, e.work / "model.pt")


def nan_part(e: Env) -> None:
    import torch

    part = interrupted_job(e)
    positions = torch.load(part, weights_only=True)
    positions.view(-1)[5] = float("nan")
    torch.save(positions, part)


def cut_part(e: Env) -> None:
    part = interrupted_job(e)
    part.write_bytes(part.read_bytes()[:200])


def reshaped_part(e: Env) -> None:
    import torch

    part = interrupted_job(e)
    torch.save(torch.load(part, weights_only=True).reshape(-1)[:30], part)


def output_finite(e: Env) -> str | None:
    """After an exit 0: 'silent' when the output holds non-finite coordinates (or cannot be read)."""
    import numpy as np
    from MDAnalysis.coordinates.XTC import XTCReader

    try:
        reader = XTCReader(str(e.out / "full.xtc"))
        ok = all(np.isfinite(ts.positions).all() for ts in reader)
    except Exception:  # noqa: BLE001 - an unreadable output is as bad
        ok = False
    return None if ok else "silent"


# --- the probe table ---------------------------------------------------------------------

PROBES = [
    # energy: trajectories
    Probe("xtc cut mid-frame", "energy", energy(traj="cut_aa.xtc", struct="aa.gro"), truncated("aa.xtc", 0.8)),
    Probe("xtc cut in header", "energy", energy(traj="cut_aa.xtc", struct="aa.gro"), truncated("aa.xtc", offset=30)),
    Probe("xtc of garbage", "energy", energy(traj="g.xtc", struct="aa.gro"), garbage("g.xtc")),
    Probe("xtc empty", "energy", energy(traj="e.xtc", struct="aa.gro"), put("e.xtc", lambda e: b"")),
    Probe("xtc atom count != struct", "energy", energy(traj="aa.xtc", struct="cg.gro"),
          put("aa.xtc", lambda e: e.raw("aa.xtc"))),
    Probe("gro Latin-1 byte in title", "energy", energy(traj="bad.gro"),
          put("bad.gro", lambda e: e.raw("aa.gro").replace(b"MDAnalysis", b"MDAnalysis caf\xe9", 1)),
          valid=True, note="free-text title: harmless if read"),
    Probe("gro Latin-1 byte in atom name", "energy", energy(traj="bad.gro"),
          put("bad.gro", lambda e: e.raw("aa.gro").replace(b"     C1", b"    \xe9C1", 1))),
    Probe("gro binary garbage", "energy", energy(traj="g.gro"), garbage("g.gro")),
    Probe("gro atom count one short", "energy", energy(traj="bad.gro"), gro_line(1, "   41")),
    Probe("gro negative atom count", "energy", energy(traj="bad.gro"), gro_line(1, "  -42")),
    Probe("gro NaN coordinate", "energy", energy(traj="bad.gro"), gro_field(3, "x", "nan")),
    Probe("gro coordinate 1e10", "energy", energy(traj="bad.gro"), gro_field(3, "y", "1e10")),
    Probe("gro all-zero box", "energy", energy(traj="bad.gro"), gro_line(-1, "   0.00000   0.00000   0.00000")),
    Probe("gro singular triclinic box", "energy", energy(traj="bad.gro"),
          gro_line(-1, "   2.50000   2.50000   0.00000   0.00000   0.00000   0.00000   0.00000   0.00000   0.00000")),
    Probe("gro all-zero box --no-pbc", "energy", energy(traj="bad.gro", extra=("--no-pbc",)),
          gro_line(-1, "   0.00000   0.00000   0.00000"), valid=True, note="a vacuum system, said so"),
    Probe("gro negative box", "energy", energy(traj="bad.gro"), gro_line(-1, "  -2.48900   2.48900   2.48900")),
    Probe("gro atom name not in topology", "energy", energy(traj="bad.gro"), gro_field(0, "name", "XX")),
    Probe("gro truncated mid-atom", "energy", energy(traj="cut.gro"), truncated("aa.gro", 0.5, name="cut.gro")),
    # energy: topology
    Probe("top Latin-1 byte in comment", "energy", energy(top="bad.top"),
          put("bad.top", lambda e: e.raw("topol.top").replace(b";   This is", b";   Th\xe9s is", 1))),
    Probe("top binary garbage", "energy", energy(top="g.top"), garbage("g.top")),
    Probe("top negative molecule count", "energy", energy(top="bad.top"),
          replaced("topol.top", "CUM                 2", "CUM                 -2", "bad.top")),
    Probe("top negative epsilon", "energy", energy(top="bad.top"),
          replaced("topol.top", "0.33977095      0.4510352", "0.33977095      -0.4510352", "bad.top")),
    Probe("top undefined atom type", "energy", energy(top="bad.top"),
          replaced("topol.top", "    1         c3      1    CUM     C1", "    1         zz      1    CUM     C1",
                   "bad.top")),
    Probe("top truncated", "energy", energy(top="cut.top"), truncated("topol.top", 0.6, name="cut.top")),
    # energy: arguments and outputs
    Probe("top nrexcl -3", "energy", energy(top="bad.top"), put("bad.top", lambda e: e.text("topol.top").replace(
        "CUM          3", "CUM          -3", 1))),
    Probe("-o on a full disk", "energy", energy(out="full/e.json"), full_disk, teardown=unmount),
    Probe("--cutoff 50 (Angstrom typed)", "energy", energy(extra=("--cutoff", "50"))),
    Probe("--cutoff 10", "energy", energy(extra=("--cutoff", "10"))),
    Probe("--cutoff -1", "energy", energy(extra=("--cutoff", "-1"))),
    Probe("--cutoff nan", "energy", energy(extra=("--cutoff", "nan"))),
    Probe("-o under a regular file", "energy", energy(out="file/e.json"), existing("file")),
    Probe("-o an existing folder --force", "energy", energy(out="dir", extra=("--force",)), existing("dir/x")),
    Probe("existing -o kept on bad input --force", "energy", energy(traj="bad.gro", out="e.json", extra=("--force",)),
          both(existing("e.json"), gro_field(3, "x", "nan"))),
    # backmap
    Probe(".pt dict without keys", "backmap", backmap(ckpt="d.pt"), torch_object("d.pt", dict)),
    Probe(".pt a list", "backmap", backmap(ckpt="l.pt"), torch_object("l.pt", lambda: [1, 2, 3])),
    Probe(".pt truncated", "backmap", backmap(ckpt="cut.pt"), truncated("checkpoint.pt", 0.5, name="cut.pt")),
    Probe(".pt garbage", "backmap", backmap(ckpt="g.pt"), garbage("g.pt")),
    Probe("--device foo", "backmap", backmap(extra=("--device", "foo"))),
    Probe("--candidates 0", "backmap", backmap(extra=("--candidates", "0"))),
    Probe("--frames 5:9 of 1 frame", "backmap", backmap(extra=("--frames", "5:9"))),
    Probe("-o under a regular file", "backmap", backmap(out="file/o.gro"), existing("file")),
    Probe("-o an existing folder --force", "backmap", backmap(out="dir", extra=("--force",)), existing("dir/x")),
    Probe("cg .xtc cut mid-frame", "backmap", backmap(cg="cut_cg.xtc", cg_struct="cg.gro", extra=("--frames", "0:1")),
          truncated("cg.xtc", 0.75)),
    Probe("cg NaN coordinate", "backmap", backmap(cg="bad.gro"), gro_field(1, "x", "nan", src="cg.gro")),
    Probe("cg bead name not in topology", "backmap", backmap(cg="bad.gro"),
          gro_field(1, "name", "ZZ", src="cg.gro"), valid=True,
          note="CG bead names are not compared: the published sPS and cumene CG files name beads otherwise than "
               "their .itp; bead order is checked by the bonded distances"),
    Probe("cg beads shifted by one (64 molecules)", "backmap",
          backmap(top="topol.top", mapping="CUM.yaml", cg="shifted.gro"), shifted_beads),
    Probe("cg all-zero box", "backmap", backmap(cg="bad.gro"),
          gro_line(-1, "   0.00000   0.00000   0.00000", src="cg.gro")),
    Probe("cg negative box", "backmap", backmap(cg="bad.gro"),
          gro_line(-1, "   2.48900  -2.48900   2.48900", src="cg.gro")),
    Probe("yaml weight .nan", "backmap", backmap(mapping="bad.yaml"),
          put("bad.yaml", lambda e: e.text("CUM.yaml").replace("beads: {1: 0.5, 2: 0.5}}", "beads: {1: .nan, 2: 0.5}}",
                                                                  1))),
    Probe("-o on a full disk", "backmap", backmap(out="full/o.gro"), full_disk, teardown=unmount),
    Probe("yaml Latin-1 byte", "backmap", backmap(mapping="bad.yaml"),
          put("bad.yaml", lambda e: e.raw("CUM.yaml").replace(b"molecule: CUM", b"molecule: CUM # \xe9", 1))),
    Probe("yaml binary garbage", "backmap", backmap(mapping="g.yaml"), garbage("g.yaml")),
    Probe("yaml truncated (20 atoms)", "backmap", backmap(mapping="cut.yaml"),
          put("cut.yaml", lambda e: e.text("CUM.yaml").rsplit("- {index: 21", 1)[0])),
    Probe("yaml bead index 7", "backmap", backmap(mapping="bad.yaml"),
          replaced("CUM.yaml", "{index: 5, prior_type: ca, home: 3, beads: {3: 1.0}}",
                   "{index: 5, prior_type: ca, home: 3, beads: {7: 1.0}}", "bad.yaml")),
    Probe("map without [/map]", "backmap", backmap(mapping="bad.map"),
          replaced("CUM.map", "[/map]", "", "bad.map")),
    Probe("map wrong type column", "backmap", backmap(mapping="bad.map"),
          replaced("CUM.map", "    5 ca        3 SC", "    5 hc        3 SC", "bad.map")),
    Probe("map unknown bead", "backmap", backmap(mapping="bad.map"),
          replaced("CUM.map", "    5 ca        3 SC", "    5 ca        7 SC", "bad.map")),
    Probe("map duplicated atom", "backmap", backmap(mapping="bad.map"),
          replaced("CUM.map", "    5 ca        3 SC", "    4 ca        3 SC", "bad.map")),
    Probe("map Latin-1 byte", "backmap", backmap(mapping="bad.map"),
          put("bad.map", lambda e: e.raw("CUM.map").replace(b";bead fixpoint", b";bead fixpoint \xe9", 1))),
    Probe("Ctrl-C during a 64-molecule job", "backmap",
          backmap(**FULL_JOB), full_example, interrupt_after=6.0),
    Probe("SIGTERM during a 64-molecule job", "backmap",
          backmap(**FULL_JOB), full_example, interrupt_after=6.0,
          interrupt_signal=signal.SIGTERM),
    Probe("rerun after the input changed (stale parts)", "backmap", backmap(**FULL_JOB), stale_parts,
          check=stale_frame_reused, note="exit 0 allowed if the frame is redone"),
    Probe("rerun after the checkpoint was retrained (same path)", "backmap", backmap(**FULL_JOB_OWN_MODEL),
          stale_checkpoint),
    Probe("rerun with a NaN in a kept part", "backmap", backmap(**FULL_JOB), nan_part, check=output_finite,
          note="exit 0 allowed if the part is redone"),
    Probe("rerun with a truncated part", "backmap", backmap(**FULL_JOB), cut_part, check=output_finite,
          note="exit 0 allowed if the part is redone"),
    Probe("rerun with a reshaped part", "backmap", backmap(**FULL_JOB), reshaped_part, check=output_finite,
          note="exit 0 allowed if the part is redone"),
    # eval
    Probe("--gen .xtc cut mid-frame", "eval", evaluate(gen="cut_aa.xtc"), truncated("aa.xtc", 0.8)),
    Probe("--gen atom count wrong", "eval", evaluate(gen="cg.gro")),
    Probe("--frames 5:9 of 2", "eval", evaluate(extra=("--frames", "5:9"))),
    Probe("-o under a regular file", "eval", evaluate(out="file/ev"), existing("file")),
    Probe("--gen NaN coordinate", "eval", evaluate(gen="bad.gro"), gro_field(3, "x", "nan")),
    Probe("-o on a full disk", "eval", evaluate(out="full/ev"), full_disk, teardown=unmount),
    # relax
    Probe("--aa NaN coordinate", "relax", relax(aa="bad.gro"), gro_field(3, "x", "nan")),
    Probe("--cg .xtc cut mid-frame", "relax", relax(cg="cut_cg.xtc", extra=("--cg-struct", "CGSTRUCT")),
          truncated("cg.xtc", 0.75)),
    Probe("--steps -1", "relax", relax(extra=("--steps", "-1"))),
    Probe("-o under a regular file", "relax", relax(out="file/r.gro"), existing("file")),
    # fit
    Probe("data.frames '0:1'", "fit", fit(),
          config(lambda t: t.replace("\nenvironment", "\n  frames: \"0:1\"\nenvironment")), valid=True),
    Probe("config binary garbage", "fit", fit(config="g.yaml"), garbage("g.yaml")),
    Probe("config non-UTF-8 raw", "fit", fit(config="raw.yaml"),
          both(config(), lambda e: e.put("raw.yaml", b"# \xe9\xff\n" + (e.work / "tiny.yaml").read_bytes()))),
    Probe("training.batch_size -2", "fit", fit(), config(lambda t: t.replace("batch_size: 2", "batch_size: -2"))),
    Probe("--device foo", "fit", fit(extra=("--device", "foo")), config()),
    Probe("--device cuda (CPU machine)", "fit", fit(extra=("--device", "cuda")), config(),
          note="valid where CUDA exists"),
    Probe("--resume without checkpoint", "fit", fit(extra=("--resume",)), config()),
    Probe("-o under a regular file", "fit", fit(out="file/run"), both(config(), existing("file"))),
    Probe("Ctrl-C during training", "fit", fit(extra=("--steps", "100000")), config(), interrupt_after=5.0),
    Probe("SIGTERM during training", "fit", fit(extra=("--steps", "100000")), config(), interrupt_after=5.0,
          interrupt_signal=signal.SIGTERM),
    Probe("data.aa a missing file", "fit", fit(), config(lambda t: t.replace("aa: ", "aa: gone_", 1))),
]


# --- running and classifying ---------------------------------------------------------------

@dataclass
class Result:
    probe: Probe
    status: int | None  # exit code; negative: signal
    stderr: str
    seconds: float
    changed: bool  # output folder differs from before
    folder: Path | None = None
    after_signal: float | None = None  # seconds from SIGINT to exit
    checked: str | None = None  # the probe's own check after an exit 0
    result: str = ""


def _vsize() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _child(argv: list[str], err_path: Path, out_path: Path) -> None:
    """In the forked child: stdout/stderr to files (file descriptors, so C-level output too), a
    memory limit, then ``gdbm.cli.main.main`` as ``python -m gdbm`` would run it."""
    fd_out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    fd_err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd_out, 1)
    os.dup2(fd_err, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    limit = _vsize() + int(MEMORY_LIMIT_GB * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    code = 1
    try:
        from gdbm.cli.main import main

        code = main(["--threads", "1", *argv])
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: BLE001 - as the interpreter would print it
        traceback.print_exc()
        code = 1
    gc.collect()  # "Exception ignored in ..." from finalizers, as at interpreter exit
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)


def run_probe(probe: Probe, mini: Path, ckpt: Path, root: Path, timeout: float, use_exec: bool) -> Result:
    folder = Path(tempfile.mkdtemp(prefix=probe.command + "_", dir=root))
    env = Env(mini, ckpt, folder / "in", folder / "out")
    env.work.mkdir()
    env.out.mkdir()
    if probe.setup:
        try:
            probe.setup(env)
        except Exception as err:  # noqa: BLE001 - a probe that could not be set up is reported, the others go on
            return Result(probe, None, f"setup failed: {err}", 0.0, False, folder, result="setup failed")
    argv = [a.replace("CGSTRUCT", str(mini / "cg.gro")) for a in probe.argv(env)]
    before = snapshot(env.out)
    err_path, out_path = folder / "stderr", folder / "stdout"
    start = time.perf_counter()
    if use_exec:
        with open(err_path, "w") as err, open(out_path, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "gdbm", "--threads", "1", *argv], stdout=out, stderr=err,
                                    env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True,
                                    preexec_fn=_signals_default)
            status, signalled = None, None
            while time.perf_counter() - start < timeout:
                if proc.poll() is not None:
                    status = proc.returncode
                    break
                if probe.interrupt_after is not None and signalled is None \
                        and time.perf_counter() - start > probe.interrupt_after:
                    proc.send_signal(probe.interrupt_signal)
                    signalled = time.perf_counter()
                time.sleep(0.05)
            else:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    else:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)
            _child(argv, err_path, out_path)
        status, signalled = None, None
        while time.perf_counter() - start < timeout:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(raw)
                break
            if probe.interrupt_after is not None and signalled is None \
                    and time.perf_counter() - start > probe.interrupt_after:
                os.kill(pid, probe.interrupt_signal)
                signalled = time.perf_counter()
            time.sleep(0.05)
        else:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    end = time.perf_counter()
    seconds = end - start
    stderr = err_path.read_text(errors="replace")
    after = snapshot(env.out)
    if probe.interrupt_after is not None:  # parts / checkpoints are kept on purpose; no finished output
        changed = "full.xtc" in after
    else:
        changed = after != before
    result = Result(probe, status, stderr, seconds, changed, folder,
                    None if signalled is None or status is None else end - signalled)
    if status == 0 and probe.check is not None:
        result.checked = probe.check(env)
    if probe.teardown is not None:
        probe.teardown(env)
    result.result = classify(result)
    return result


def classify(r: Result) -> str:
    lines = stderr_lines(r.stderr)
    if r.status is None:
        return "hang"
    expected = (0, 2, 130, -2, 143, -15) if r.probe.interrupt_after is not None else (0, 2)
    if "Traceback" in r.stderr or "Exception ignored" in r.stderr or r.status not in expected:
        return "traceback"
    if r.probe.interrupt_after is not None:
        if r.after_signal is None:
            return "unclear"  # ended before the signal: the probe needs a longer job
        if r.after_signal > 2.0:
            return "hang"
        return "clear" if r.status != 0 and len(lines) == 1 and not r.changed else "unclear"
    if r.probe.valid:
        return "ok" if r.status == 0 else "rejected"
    if r.status == 0:
        return r.checked or ("ok" if r.probe.check else "silent")
    if len(lines) != 1 or r.changed:
        return "unclear"
    return "clear"


def message(r: Result) -> str:
    lines = stderr_lines(r.stderr)
    if r.result == "setup failed":
        text = r.stderr
    elif r.status is None:
        text = f"(killed after {r.seconds:.0f} s)"
    elif r.result == "traceback":
        errors = [line for line in lines if not line.startswith(("File ", "^", "~"))]
        text = (errors[-1] if errors else "") + ("" if r.status in (0, 2) else f" (exit {r.status})")
    elif r.status == 0:
        text = "(exit 0; checked: the output is right)" if r.probe.check and not r.checked else "(exit 0)"
    else:
        text = lines[-1] if lines else ""
        if r.result == "unclear":
            text = f"[{len(lines)} lines{', output changed' if r.changed else ''}] " + text
    if r.after_signal is not None:
        text = f"[exit {r.status} {r.after_signal:.1f} s after {signal.Signals(r.probe.interrupt_signal).name}] " + text
    if r.status == 0 and r.checked:
        text = "(exit 0; the stale frame was reused)"
    if r.folder is not None:
        text = text.replace(str(r.folder) + "/", "").replace(str(r.folder.parent) + "/", "")
    text = text.replace(str(REPO), ".").replace("|", "\\|")
    return text[:170]


def prepare(root: Path) -> tuple[Path, Path]:
    mini = make_mini_cumene(root / "mini")
    from gdbm.topology.mapfiles import load_mapping, write_map

    write_map(load_mapping(mini / "CUM.yaml"), mini / "CUM.map")
    (mini / "tiny.yaml").write_text(tiny_fit_config(mini))
    run = root / "tiny_run"
    proc = subprocess.run([sys.executable, "-m", "gdbm", "--threads", "1", "fit", "--config", str(mini / "tiny.yaml"),
                           "-o", str(run), "--force"], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        sys.exit(f"probe_bad_inputs: the one-step model could not be trained:\n{proc.stderr[-2000:]}")
    return mini, run / "checkpoint.pt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per probe (default 60)")
    parser.add_argument("--only", default="", help="run the probes whose command or name contains this")
    parser.add_argument("--exec", dest="use_exec", action="store_true",
                        help="run each probe as `python -m gdbm` (slower: imports every time)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    import gdbm.cli.main  # noqa: F401 - imported once, inherited by every forked probe

    probes = [p for p in PROBES if args.only in f"{p.command} {p.name}"]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gdbm_probes_") as tmp:
        root = Path(tmp)
        mini, ckpt = prepare(root)
        # warm the lazily imported modules once, so each fork starts with them
        from gdbm.cli.main import main as gdbm_main
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            gdbm_main(["energy", "--top", str(mini / "topol.top"), "--aa", str(mini / "aa.gro")])
        results = []
        for probe in probes:
            r = run_probe(probe, mini, ckpt, root, args.timeout, args.use_exec)
            results.append(r)
            print(f"{r.result:9s} {probe.command:8s} {probe.name}  ({r.seconds:.1f} s)", file=sys.stderr, flush=True)
    print("| # | command | probe | result | exit | s | stderr (last line) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for i, r in enumerate(results, 1):
        name = r.probe.name + (" *(valid input)*" if r.probe.valid else "") + (f" ({r.probe.note})"
                                                                               if r.probe.note else "")
        exit_text = "timeout" if r.status is None else str(r.status)
        print(f"| {i} | {r.probe.command} | {name} | **{r.result}** | {exit_text} | {r.seconds:.1f} | "
              f"{message(r)} |")
    counts: dict[str, int] = {}
    for r in results:
        counts[r.result] = counts.get(r.result, 0) + 1
    print()
    print(f"{len(results)} probes in {time.perf_counter() - start:.0f} s: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if args.json:
        Path(args.json).write_text(json.dumps([{"command": r.probe.command, "probe": r.probe.name,
                                                "result": r.result, "exit": r.status, "seconds": round(r.seconds, 2),
                                                "stderr": r.stderr[-2000:]} for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
