"""Bad input, generated: every corrupted copy of the shipped cumene example (cut to two molecules)
and every bad argument ends in exit 2 with one line on stderr, no traceback, no output left
behind and no existing output overwritten; a corruption that happens to be harmless exits 0 with
the clean run's output (issue 20).

Property-based with hypothesis: truncation at random offsets, random byte flips, non-UTF-8 bytes
and bad values per field of ``.gro``, ``.xtc``, ``.top``, YAML and ``.map`` mappings, fit configs
and ``.pt`` checkpoints, run through ``gdbm.cli.main.main`` in this process. The default run draws
a few examples per property (seconds); ``-m slow`` (or ``GDBM_FUZZ_SLOW=1``) runs the same
properties with ``GDBM_FUZZ_SLOW_EXAMPLES`` (default 200) examples each.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fuzz_helpers import (NON_UTF8, Outcome, contract_violations, energies_prefix, env_int, flip_byte,
                          gro_set_field, insert_bytes, make_mini_cumene, run_main, snapshot, tiny_fit_config,
                          truncate)

FAST = env_int("GDBM_FUZZ_EXAMPLES", 6)
SLOW = env_int("GDBM_FUZZ_SLOW_EXAMPLES", 200)
N_AA = 42

_COMMON = dict(deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                      HealthCheck.data_too_large])


def fast(n: int = FAST):
    return settings(max_examples=n, **_COMMON)


def slow(n: int = SLOW):
    return settings(max_examples=n, **{**_COMMON, "derandomize": False})


# --- the system, a one-step model and the clean runs ------------------------------------

@pytest.fixture(scope="session")
def mini(tmp_path_factory) -> Path:
    folder = make_mini_cumene(tmp_path_factory.mktemp("mini_cumene"))
    from gdbm.topology.mapfiles import load_mapping, write_map

    write_map(load_mapping(folder / "CUM.yaml"), folder / "CUM.map")
    (folder / "tiny.yaml").write_text(tiny_fit_config(folder))
    return folder


@pytest.fixture(scope="session")
def checkpoint(mini: Path, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("tiny_run")
    outcome = run_main(["fit", "--config", str(mini / "tiny.yaml"), "-o", str(run), "--force"], None, run)
    assert outcome.code == 0, outcome.err + (outcome.exception or "")
    return run / "checkpoint.pt"


def _workdir(base: Path) -> tuple[Path, Path]:
    """A fresh input folder and an empty output folder for one example."""
    root = Path(tempfile.mkdtemp(dir=base))
    (root / "in").mkdir()
    (root / "out").mkdir()
    return root / "in", root / "out"


def energy_argv(top: Path, traj: Path, out: Path, struct: Path | None = None, extra=()) -> list[str]:
    argv = ["energy", "--top", str(top), "--aa", str(traj), "-o", str(out / "energies.json"), *extra]
    return argv + (["--aa-struct", str(struct)] if struct else [])


@pytest.fixture(scope="session")
def clean_energy(mini: Path, tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """The energy JSON of the clean ``aa.gro`` and ``aa.xtc`` (output folder snapshots)."""
    result = {}
    for name, struct in (("aa.gro", None), ("aa.xtc", mini / "aa.gro")):
        out = tmp_path_factory.mktemp("clean_energy")
        outcome = run_main(energy_argv(mini / "topol.top", mini / name, out, struct), None, out)
        assert outcome.code == 0, outcome.err + (outcome.exception or "")
        result[name] = outcome.files_after
    return result


def backmap_argv(mini: Path, checkpoint: Path, out: Path, *, top=None, mapping=None, cg=None, cg_struct=None,
                 extra=()) -> list[str]:
    argv = ["backmap", "--top", str(top or mini / "topol.top"), "--map", str(mapping or mini / "CUM.yaml"),
            "--cg", str(cg or mini / "cg.gro"), "--checkpoint", str(checkpoint), "-o", str(out / "aa_out.gro"),
            "--candidates", "1", "--gibbs", "0", "--seed", "3", *extra]
    return argv + (["--cg-struct", str(cg_struct)] if cg_struct else [])


@pytest.fixture(scope="session")
def clean_backmap(mini: Path, checkpoint: Path, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("clean_backmap")
    outcome = run_main(backmap_argv(mini, checkpoint, out), None, out)
    assert outcome.code == 0, outcome.err + (outcome.exception or "")
    return outcome.files_after


def check(outcome: Outcome, before: dict, clean: dict | None = None, *, harmless_ok: bool = False, same=None,
          argparse_error: bool = False, what: str = "") -> None:
    problems = contract_violations(outcome, before, clean, harmless_ok, same, argparse_error)
    assert not problems, f"{what}: " + "; ".join(problems) + f"\nstderr: {outcome.err[-1500:]}"


def _energy_case(mini, tmp_path, capsys, clean, name: str, data: bytes, *, strong: bool, prefix_ok=False,
                 what: str = "", extra=()) -> None:
    src, out = _workdir(tmp_path)
    for f in ("topol.top", "aa.gro", "aa.xtc"):
        shutil.copyfile(mini / f, src / f)
    (src / name).write_bytes(data)
    traj = src / ("aa.xtc" if name == "aa.xtc" else "aa.gro")
    struct = src / "aa.gro" if traj.suffix == ".xtc" else None
    outcome = run_main(energy_argv(src / "topol.top", traj, out, struct, extra), capsys, out)
    key = "aa.xtc" if traj.suffix == ".xtc" else "aa.gro"
    same = energies_prefix if prefix_ok else None
    check(outcome, {}, clean[key], harmless_ok=not strong, same=same, what=what)


# --- properties ------------------------------------------------------------------------

def prop_truncated_gro(mini, tmp_path, capsys, clean_energy, fraction):
    data = (mini / "aa.gro").read_bytes()
    offset = int(fraction * (len(data) - 1))
    box_start = data.rstrip(b"\n").rfind(b"\n") + 1
    # cut before the box line: atoms are missing (an error); inside the box line: the box may read
    # as another valid box, so only "no traceback, one line" holds there
    strong = offset < box_start
    if not strong and offset < len(data) - 1:
        src, out = _workdir(tmp_path)
        shutil.copyfile(mini / "topol.top", src / "topol.top")
        (src / "aa.gro").write_bytes(truncate(data, offset))
        outcome = run_main(energy_argv(src / "topol.top", src / "aa.gro", out), capsys, out)
        check(outcome, {}, None, harmless_ok=True, what=f"aa.gro cut at {offset}")
        return
    _energy_case(mini, tmp_path, capsys, clean_energy, "aa.gro", truncate(data, offset), strong=strong,
                 what=f"aa.gro cut at byte {offset} of {len(data)}")


def prop_truncated_xtc(mini, tmp_path, capsys, clean_energy, fraction):
    import json

    data = (mini / "aa.xtc").read_bytes()
    offset = int(fraction * (len(data) - 1))
    boundaries = json.loads((mini / "xtc_boundaries.json").read_text())["aa.xtc"]
    _energy_case(mini, tmp_path, capsys, clean_energy, "aa.xtc", truncate(data, offset),
                 strong=offset not in boundaries, prefix_ok=True, what=f"aa.xtc cut at byte {offset} of {len(data)}")


def prop_truncated_top(mini, tmp_path, capsys, clean_energy, fraction):
    data = (mini / "topol.top").read_bytes()
    offset = int(fraction * (len(data) - 1))
    _energy_case(mini, tmp_path, capsys, clean_energy, "topol.top", truncate(data, offset),
                 strong=offset < len(data.rstrip()), what=f"topol.top cut at byte {offset} of {len(data)}")


_BAD_BYTES = st.sampled_from([0x00, 0x01, 0x07, 0x1b, 0x7f, 0x80, 0x9d, 0xc3, 0xe9, 0xfe, 0xff])


def prop_text_byte_flip(mini, tmp_path, capsys, clean_energy, name, fraction, value):
    """A control or non-UTF-8 byte in place of any byte of a text input: an error, or (a comment,
    a title) the clean output."""
    data = (mini / name).read_bytes()
    offset = int(fraction * (len(data) - 1))
    _energy_case(mini, tmp_path, capsys, clean_energy, name, flip_byte(data, offset, value), strong=False,
                 what=f"{name} byte {offset} -> {value:#04x}")


def prop_non_utf8_inserted(mini, tmp_path, capsys, clean_energy, name, fraction, extra):
    data = (mini / name).read_bytes()
    offset = int(fraction * (len(data) - 1))
    _energy_case(mini, tmp_path, capsys, clean_energy, name, insert_bytes(data, offset, extra), strong=False,
                 what=f"{name}: {extra!r} inserted at byte {offset}")


_GRO_BAD = st.one_of(
    st.tuples(st.sampled_from(["x", "y", "z"]), st.sampled_from(["nan", "inf", "-inf", "1e10", "-1e10", "1.2.3",
                                                                 "abc", ""])),
)


def prop_gro_bad_atom_field(mini, tmp_path, capsys, clean_energy, atom, field_value):
    column, value = field_value
    text = gro_set_field((mini / "aa.gro").read_text(), atom, column, value)
    _energy_case(mini, tmp_path, capsys, clean_energy, "aa.gro", text.encode(), strong=True,
                 what=f"aa.gro atom {atom + 1} {column} = {value!r}")


_GRO_HEADER = st.sampled_from(["-42", "0", "41", "43", "-1", "abc", "4200000000", ""])
_GRO_BOX = st.sampled_from(["nan nan nan", "inf 2.5 2.5",
                            "2.48858 2.48858", "2.5 2.5 0", "1e10 1e10 1e10", "abc",
                            "2.5 2.5 2.5 0 0 0 0 0 0 0", "2.5 0 2.5 0 0 0 0 0 0",
                            "2.5 2.5 0 0 0 2.5 0 2.5 2.5", "-2.48858 2.48858 2.48858",
                            "2.48858 2.48858 -2.48858", "0 0 0", "0.0 0.0 0.0"])


def prop_gro_bad_header_or_box(mini, tmp_path, capsys, clean_energy, header, box):
    lines = (mini / "aa.gro").read_text().splitlines()
    if header is not None:
        lines[1] = header
    else:
        lines[-1] = box
    _energy_case(mini, tmp_path, capsys, clean_energy, "aa.gro", ("\n".join(lines) + "\n").encode(), strong=True,
                 what=f"aa.gro header {header!r}" if header is not None else f"aa.gro box {box!r}")


_TOP_EDITS = st.sampled_from([
    ("CUM                 2", "CUM                 -2"),
    ("CUM                 2", "CUM                 3"),
    ("CUM                 2", "CUM                 abc"),
    ("CUM                 2", "XYZ                 2"),
    ("0.33977095      0.4510352", "0.33977095      -0.4510352"),
    ("0.33977095      0.4510352", "0.33977095      nan"),
    ("0.33977095      0.4510352", "-0.33977095      0.4510352"),
    ("0.33977095      0.4510352", "abc      0.4510352"),
    ("    1         c3      1    CUM     C1", "    1         zz      1    CUM     C1"),
    ("      1      2     1   0.15354", "      1     99     1   0.15354"),
    ("      1      2     1   0.15354", "      1      2     1   nan"),
    ("[ molecules ]", "[ molecules"),
    ("[ atoms ]", "[ atomz ]"),
    ("CUM          3", "CUM          -3"),
    ("CUM          3", "CUM          x"),
])


def prop_top_bad_value(mini, tmp_path, capsys, clean_energy, edit):
    old, new = edit
    text = (mini / "topol.top").read_text()
    assert old in text, old
    _energy_case(mini, tmp_path, capsys, clean_energy, "topol.top", text.replace(old, new, 1).encode(),
                 strong=True, what=f"topol.top {old!r} -> {new!r}")


_CUTOFFS = st.sampled_from(["50", "10", "0", "-1", "nan", "inf", "1e300"])


def prop_energy_bad_cutoff(mini, tmp_path, capsys, clean_energy, cutoff):
    _energy_case(mini, tmp_path, capsys, clean_energy, "aa.gro", (mini / "aa.gro").read_bytes(), strong=True,
                 extra=("--cutoff", cutoff), what=f"--cutoff {cutoff}")


def prop_pt_bad(mini, tmp_path, capsys, checkpoint, kind, fraction):
    import torch

    src, out = _workdir(tmp_path)
    data = checkpoint.read_bytes()
    pt = src / "model.pt"
    if kind == "truncated":
        pt.write_bytes(truncate(data, int(fraction * (len(data) - 1))))
    elif kind == "garbage":
        pt.write_bytes(bytes((int(fraction * 9973) * i * 7 + 13) % 256 for i in range(4096)))
    elif kind == "empty":
        pt.write_bytes(b"")
    elif kind == "text":
        pt.write_text("not a checkpoint\n")
    else:
        torch.save({"dict": {}, "list": [1, 2, 3], "tensor": torch.zeros(3), "partial": {"config": {}},
                    "none": None}[kind], pt)
    outcome = run_main(backmap_argv(mini, pt, out), capsys, out)
    check(outcome, {}, what=f"checkpoint {kind} ({fraction:.3f})")


def prop_mapping_bad(mini, tmp_path, capsys, checkpoint, clean_backmap, name, mutation, fraction):
    src, out = _workdir(tmp_path)
    shutil.copyfile(mini / "CUM_cg.itp", src / "CUM_cg.itp")
    data = (mini / name).read_bytes()
    offset = int(fraction * (len(data) - 1))
    strong = True
    if mutation == "truncate":
        data, strong = truncate(data, offset), offset < len(data.rstrip())
    elif mutation == "latin1":
        data, strong = insert_bytes(data, offset, b"\xe9"), False
    else:
        old, new = mutation
        text = data.decode()
        assert old in text, (name, old)
        data = text.replace(old, new, 1).encode()
    (src / name).write_bytes(data)
    outcome = run_main(backmap_argv(mini, checkpoint, out, mapping=src / name), capsys, out)
    check(outcome, {}, clean_backmap, harmless_ok=not strong, what=f"{name} {mutation!r} at {offset}")


_YAML_EDITS = [("n_atoms: 21", "n_atoms: 20"), ("n_atoms: 21", "n_atoms: -21"), ("n_atoms: 21", "n_atoms: abc"),
               ("{index: 5, prior_type: ca, home: 3, beads: {3: 1.0}}",
                "{index: 5, prior_type: ca, home: 3, beads: {7: 1.0}}"),
               ("{index: 5, prior_type: ca, home: 3, beads: {3: 1.0}}",
                "{index: 5, prior_type: ca, home: 3, beads: {3: -1.0}}"),
               ("{index: 5, prior_type: ca, home: 3, beads: {3: 1.0}}",
                "{index: 5, prior_type: ca, home: 9, beads: {3: 1.0}}"),
               ("{index: 5, prior_type: ca,", "{index: 4, prior_type: ca,"),
               ("{name: R1, type: R,", "{name: R1, type: Q,"),
               ("- [1, 3]", "- [1, 9]"), ("center: com", "center: nowhere"), ("molecule: CUM", "molecule: XYZ"),
               ("beads: {1: 0.5, 2: 0.5}}", "beads: {1: .nan, 2: 0.5}}"),
               ("beads: {1: 0.5, 2: 0.5}}", "beads: {1: .inf, 2: 0.5}}")]
# the .map the fixture writes: "index type bead..." lines in [map] ... [/map]
_MAP_EDITS = [("[/map]", ""), ("    5 ca        3 SC   1.0", "    5 hc        3 SC   1.0"),
              ("    5 ca        3 SC   1.0", "    5 ca        7 SC   1.0"),
              ("    5 ca        3 SC   1.0", "    4 ca        3 SC   1.0"),
              ("    5 ca        3 SC   1.0", "   99 ca        3 SC   1.0"),
              ("    5 ca        3 SC   1.0", "    5 ca        3 SC  -1.0"),
              ("    5 ca        3 SC   1.0", "    5 ca        3 SC   nan")]


def prop_fit_config_bad(mini, tmp_path, capsys, edit):
    src, out = _workdir(tmp_path)
    key, value = edit
    text = tiny_fit_config(mini)
    if key == "frames":  # a valid config (issue 20: resolved as a path)
        text = text.replace("  cg: cg.gro\n", "  cg: cg.gro\n  frames: \"0:1\"\n")
    elif key.startswith("--") or key == "missing":
        pass
    else:
        name = key.split(".")[1]
        text = re.sub(rf"(\b{name}: )([^,}}\n]+)", lambda m: m.group(1) + value, text, count=1)
    config = src / "tiny.yaml"
    text = text.replace("topol.top", str(mini / "topol.top")).replace(
        "CUM.yaml", str(mini / "CUM.yaml")).replace("aa.gro", str(mini / "aa.gro")).replace(
        "cg.gro", str(mini / "cg.gro"))
    if key == "missing":  # a data file that is not there: refused before the run folder is made
        text = re.sub(rf"(\b{value}: )(\S+)", lambda m: m.group(1) + str(src / "gone.file"), text, count=1)
    config.write_text(text)
    argv = ["fit", "--config", str(config), "-o", str(out / "run")]
    if key.startswith("--"):
        argv += [key, value] if value else [key]
    outcome = run_main(argv, capsys, out)
    if key == "frames":
        assert outcome.code == 0 and outcome.exception is None, f"data.frames '0:1' rejected: {outcome.err}"
        return
    check(outcome, {}, what=f"fit config {key} = {value!r}")


_FIT_EDITS = st.sampled_from([
    ("training.steps", "-1"), ("training.batch_size", "0"), ("training.batch_size", "-2"),
    ("training.n_critic", "-1"), ("training.batch_size", "abc"), ("model.resolution", "0"),
    ("model.channels", "-4"), ("environment.cutoff", "-0.7"), ("environment.cutoff", "nan"),
    ("--device", "foo"), ("--resume", ""),
    ("--device", "cuda:7"),
    ("frames", ""),
    ("missing", "aa"), ("missing", "topology"),
])


def prop_output_paths(mini, tmp_path, capsys, checkpoint, command, kind):
    """-o under a regular file, an existing output without --force, an existing folder with --force
    and bad input: exit 2, nothing changed."""
    src, out = _workdir(tmp_path)
    (out / "file").write_text("keep me\n")
    bad_gro = gro_set_field((mini / "aa.gro").read_text(), 0, "x", "nan")
    (src / "bad.gro").write_text(bad_gro)
    target = {"under_file": out / "file" / ("o.json" if command == "energy" else "o"),
              "exists": out / "file", "folder_force": out}[kind]
    force = ["--force"] if kind == "folder_force" else []
    if command == "energy":
        argv = ["energy", "--top", str(mini / "topol.top"), "--aa", str(src / "bad.gro" if kind == "exists"
                else mini / "aa.gro"), "-o", str(target), *force]
    elif command == "backmap":
        argv = backmap_argv(mini, checkpoint, out, extra=force)
        argv[argv.index("-o") + 1] = str(target if kind != "under_file" else out / "file" / "o.gro")
        if kind == "exists":
            argv[argv.index("--cg") + 1] = str(src / "bad.gro")
            (src / "bad.gro").write_text(gro_set_field((mini / "cg.gro").read_text(), 0, "x", "nan"))
    elif command == "eval":
        argv = ["eval", "--top", str(mini / "topol.top"), "--ref", str(mini / "aa.gro"), "--gen",
                f"g={src / 'bad.gro'}", "-o", str(target), *force]
    else:
        argv = ["fit", "--config", str(mini / "tiny.yaml"), "-o", str(target), *force]
    before = snapshot(out)
    outcome = run_main(argv, capsys, out)
    if kind == "folder_force" and outcome.code == 0:
        return  # overwriting an existing folder with --force may be legitimate for a valid input
    check(outcome, before, what=f"{command} -o {kind}")


def prop_backmap_bad_argument(mini, tmp_path, capsys, checkpoint, arg):
    src, out = _workdir(tmp_path)
    argv = backmap_argv(mini, checkpoint, out, extra=arg)
    outcome = run_main(argv, capsys, out)
    check(outcome, {}, argparse_error=True, what=f"backmap {' '.join(arg)}")


_BACKMAP_ARGS = st.sampled_from([("--candidates", "0"), ("--candidates", "-3"), ("--samples", "0"),
                                 ("--gibbs", "-1"), ("--frames", "5:9"), ("--frames", "1:0"), ("--frames", "abc"),
                                 ("--device", "foo"), ("--max-batch", "0"), ("--workers", "0"),
                                 ("--relax", "-5"), ("--precision", "float16"), ("--ordering", "nowhere.yaml")])


def prop_truncated_cg_xtc_backmap(mini, tmp_path, capsys, checkpoint, fraction):
    import json

    src, out = _workdir(tmp_path)
    data = (mini / "cg.xtc").read_bytes()
    offset = int(fraction * (len(data) - 1))
    if offset in json.loads((mini / "xtc_boundaries.json").read_text())["cg.xtc"]:
        offset += 1
    (src / "cg.xtc").write_bytes(truncate(data, offset))
    outcome = run_main(backmap_argv(mini, checkpoint, out, cg=src / "cg.xtc", cg_struct=mini / "cg.gro",
                                    extra=("--frames", "0:1")), capsys, out)
    check(outcome, {}, what=f"cg.xtc cut at byte {offset} of {len(data)}")


def prop_truncated_xtc_eval(mini, tmp_path, capsys, fraction):
    import json

    src, out = _workdir(tmp_path)
    data = (mini / "aa.xtc").read_bytes()
    offset = int(fraction * (len(data) - 1))
    if offset in json.loads((mini / "xtc_boundaries.json").read_text())["aa.xtc"]:
        offset += 1
    (src / "gen.xtc").write_bytes(truncate(data, offset))
    outcome = run_main(["eval", "--top", str(mini / "topol.top"), "--ref", str(mini / "aa.xtc"), "--ref-struct",
                        str(mini / "aa.gro"), "--gen", f"g={src / 'gen.xtc'}", "-o", str(out / "ev")], capsys, out)
    check(outcome, {}, what=f"eval --gen cut at byte {offset} of {len(data)}")


_XTC_FIELDS = {"magic": (0, 4), "natoms": (4, 8), "natoms_again": (52, 56)}


def prop_xtc_header_flip(mini, tmp_path, capsys, clean_energy, frame, field_name, byte, value):
    """A changed magic number or atom count in a frame header: always an error."""
    import json

    data = (mini / "aa.xtc").read_bytes()
    start = [0, *json.loads((mini / "xtc_boundaries.json").read_text())["aa.xtc"]][frame]
    a, b = _XTC_FIELDS[field_name]
    offset = start + a + byte % (b - a)
    _energy_case(mini, tmp_path, capsys, clean_energy, "aa.xtc", flip_byte(data, offset, value), strong=True,
                 what=f"aa.xtc frame {frame} {field_name} byte {offset} -> {value:#04x}")


def prop_binary_byte_flip(mini, tmp_path, capsys, clean_energy, checkpoint, name, fraction, value):
    """Any byte of a binary input changed: the change may go unnoticed (compressed coordinates,
    weights), but never a traceback, and an error is one line with no output."""
    src, out = _workdir(tmp_path)
    path = checkpoint if name == "checkpoint.pt" else mini / name
    data = path.read_bytes()
    offset = int(fraction * (len(data) - 1))
    (src / name).write_bytes(flip_byte(data, offset, value))
    if name == "checkpoint.pt":
        argv = backmap_argv(mini, src / name, out)
    else:
        argv = energy_argv(mini / "topol.top", src / name, out, mini / "aa.gro")
    outcome = run_main(argv, capsys, out)
    check(outcome, {}, None, harmless_ok=True, what=f"{name} byte {offset} -> {value:#04x}")


def prop_cg_bad_value(mini, tmp_path, capsys, checkpoint, bead, edit):
    src, out = _workdir(tmp_path)
    column, value = edit
    text = (mini / "cg.gro").read_text()
    if column == "box":
        lines = text.splitlines()
        lines[-1] = value
        text = "\n".join(lines) + "\n"
    else:
        text = gro_set_field(text, bead, column, value)
    (src / "cg.gro").write_text(text)
    outcome = run_main(backmap_argv(mini, checkpoint, out, cg=src / "cg.gro"), capsys, out)
    check(outcome, {}, what=f"cg.gro bead {bead + 1} {column} = {value!r}")


_CG_EDITS = st.sampled_from([("x", "nan"), ("y", "1e10"), ("z", "inf"), ("x", "abc"),
                             ("box", "2.5 2.5 0"), ("box", "0 0 0"), ("box", "2.48858 -2.48858 2.48858")])


def prop_gro_renamed_atom(mini, tmp_path, capsys, clean_energy, atom, name):
    """An atom named otherwise than the topology (names compared as a .gro holds them: 5 columns)."""
    text = (mini / "aa.gro").read_text()
    original = text.splitlines()[2 + atom][10:15].strip()
    if name.strip() == original:
        return
    _energy_case(mini, tmp_path, capsys, clean_energy, "aa.gro", gro_set_field(text, atom, "name", name).encode(),
                 strong=True, what=f"aa.gro atom {atom + 1} named {name!r} (was {original!r})")


def _bonded_too_far(cg_text: str, order: list[int], bonds: list[tuple[int, int]], limit: float = 1.2) -> bool:
    """Whether the beads of ``cg_text`` put in ``order`` have a bonded pair further apart than ``limit`` (cubic box)."""
    import numpy as np

    lines = cg_text.splitlines()
    xyz = np.array([[float(line[20 + 8 * k:28 + 8 * k]) for k in range(3)] for line in lines[2:-1]])[order]
    box = np.array([float(v) for v in lines[-1].split()[:3]])
    d = np.array([xyz[j] - xyz[i] for i, j in bonds])
    d -= box * np.round(d / box)
    return bool((np.linalg.norm(d, axis=1) > limit).any())


def prop_cg_bead_order(mini, tmp_path, capsys, checkpoint, order):
    """CG bead coordinates in another order (names kept): where bonded beads end up further apart than
    any CG bond (1.2 nm), exit 2 with one line; else (a swap within a molecule) it may run."""
    src, out = _workdir(tmp_path)
    text = (mini / "cg.gro").read_text()
    lines = text.splitlines()
    atoms = lines[2:-1]
    moved = [a[:20] + atoms[k][20:44] + a[44:] for a, k in zip(atoms, order)]
    (src / "cg.gro").write_text("\n".join(lines[:2] + moved + lines[-1:]) + "\n")
    bonds = [(b + 3 * m, c + 3 * m) for m in range(len(atoms) // 3) for b, c in ((0, 1), (0, 2))]
    outcome = run_main(backmap_argv(mini, checkpoint, out, cg=src / "cg.gro"), capsys, out)
    if _bonded_too_far(text, order, bonds):
        check(outcome, {}, what=f"cg.gro beads in order {order}")
    else:
        assert outcome.exception is None and outcome.code in (0, 2), outcome.err


# --- the tests: each property twice, a few examples by default and many under -m slow -----

_FRACTION = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
_TEXT_FILES = st.sampled_from(["aa.gro", "topol.top"])

PROPERTIES = {
    "truncated_gro": (prop_truncated_gro, ("clean_energy",), dict(fraction=_FRACTION)),
    "truncated_xtc": (prop_truncated_xtc, ("clean_energy",), dict(fraction=_FRACTION)),
    "truncated_top": (prop_truncated_top, ("clean_energy",), dict(fraction=_FRACTION)),
    "text_byte_flip": (prop_text_byte_flip, ("clean_energy",), dict(name=_TEXT_FILES, fraction=_FRACTION,
                                                                   value=_BAD_BYTES)),
    "non_utf8_inserted": (prop_non_utf8_inserted, ("clean_energy",),
                          dict(name=_TEXT_FILES, fraction=_FRACTION, extra=st.sampled_from(NON_UTF8))),
    "gro_bad_atom_field": (prop_gro_bad_atom_field, ("clean_energy",),
                           dict(atom=st.integers(0, N_AA - 1), field_value=_GRO_BAD)),
    "gro_bad_header_or_box": (prop_gro_bad_header_or_box, ("clean_energy",),
                              dict(header=st.one_of(st.none(), _GRO_HEADER), box=_GRO_BOX)),
    "top_bad_value": (prop_top_bad_value, ("clean_energy",), dict(edit=_TOP_EDITS)),
    "energy_bad_cutoff": (prop_energy_bad_cutoff, ("clean_energy",), dict(cutoff=_CUTOFFS)),
    "pt_bad": (prop_pt_bad, ("checkpoint",),
               dict(kind=st.sampled_from(["truncated", "garbage", "empty", "text", "dict", "list", "tensor",
                                          "partial", "none"]), fraction=_FRACTION)),
    "yaml_mapping_bad": (prop_mapping_bad, ("checkpoint", "clean_backmap"),
                         dict(name=st.just("CUM.yaml"),
                              mutation=st.sampled_from(["truncate", "latin1", *_YAML_EDITS]), fraction=_FRACTION)),
    "map_mapping_bad": (prop_mapping_bad, ("checkpoint", "clean_backmap"),
                        dict(name=st.just("CUM.map"),
                             mutation=st.sampled_from(["truncate", "latin1", *_MAP_EDITS]), fraction=_FRACTION)),
    "fit_config_bad": (prop_fit_config_bad, (), dict(edit=_FIT_EDITS)),
    "output_paths": (prop_output_paths, ("checkpoint",),
                     dict(command=st.sampled_from(["energy", "backmap", "eval", "fit"]),
                          kind=st.sampled_from(["under_file", "exists", "folder_force"]))),
    "backmap_bad_argument": (prop_backmap_bad_argument, ("checkpoint",), dict(arg=_BACKMAP_ARGS)),
    "truncated_cg_xtc_backmap": (prop_truncated_cg_xtc_backmap, ("checkpoint",), dict(fraction=_FRACTION)),
    "truncated_xtc_eval": (prop_truncated_xtc_eval, (), dict(fraction=_FRACTION)),
    "xtc_header_flip": (prop_xtc_header_flip, ("clean_energy",),
                        dict(frame=st.integers(0, 1), field_name=st.sampled_from(sorted(_XTC_FIELDS)),
                             byte=st.integers(0, 3), value=st.integers(0, 255))),
    "binary_byte_flip": (prop_binary_byte_flip, ("clean_energy", "checkpoint"),
                         dict(name=st.sampled_from(["aa.xtc", "checkpoint.pt"]), fraction=_FRACTION,
                              value=st.integers(0, 255))),
    "cg_bad_value": (prop_cg_bad_value, ("checkpoint",), dict(bead=st.integers(0, 5), edit=_CG_EDITS)),
    "gro_renamed_atom": (prop_gro_renamed_atom, ("clean_energy",),
                         dict(atom=st.integers(0, N_AA - 1),
                              name=st.text("ABCHNOXZcdhx0123456789'*", min_size=1, max_size=5))),
    "cg_bead_order": (prop_cg_bead_order, ("checkpoint",), dict(order=st.permutations(list(range(6))))),
}
# fewer default examples where one example costs seconds when the corruption goes unnoticed
FAST_EXAMPLES = {"truncated_xtc_eval": 1, "fit_config_bad": 4, "output_paths": 4}


def _make_test(name: str, prop, fixtures: tuple[str, ...], strategies: dict, is_slow: bool):
    names = ["mini", "tmp_path", "capsys", *fixtures]

    def body(**kwargs):
        prop(**kwargs)

    # pytest must see the fixture names in the signature; hypothesis fills in the rest
    import inspect

    params = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names + list(strategies)]
    body.__signature__ = inspect.Signature(params)
    body.__name__ = f"test_{name}" + ("_slow" if is_slow else "")
    test = given(**strategies)(body)
    test = (slow() if is_slow else fast(FAST_EXAMPLES.get(name, FAST)))(test)
    if is_slow:  # deselected unless asked for (tests/conftest.py)
        test = pytest.mark.slow(test)
    return test


for _name, (_prop, _fixtures, _strategies) in PROPERTIES.items():
    for _is_slow in (False, True):
        _test = _make_test(_name, _prop, _fixtures, _strategies, _is_slow)
        globals()[_test.__name__] = _test
