"""One vocabulary across the commands (issue 21) and frames without a box (issue 20).

Every option has a help text; a concept has one spelling everywhere (docs/commands.md), old
spellings still work with one note; the global options are taken after the command too; a
periodic command refuses frames without a box unless --no-pbc; progress is plain lines in a log.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from fuzz_helpers import make_mini_cumene, run_main, stderr_lines, tiny_fit_config
from gdbm.cli.common import GLOBAL_DESTS, all_parsers, deprecated_spellings
from gdbm.cli.main import build_parser, main


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings}


def _commands() -> dict[str, argparse.ArgumentParser]:
    """``{"gdbm energy": parser, ..., "gdbm datagen liquid": parser}``: every parser that runs a command."""
    return {p.prog: p for p in all_parsers(build_parser()) if p.get_default("run") is not None}


def test_every_option_of_every_command_has_a_help_text():
    missing = [f"{prog} {action.option_strings[-1]}" for prog, p in _commands().items() for action in p._actions
               if action.option_strings and not (action.help or "").strip()]
    assert not missing, missing
    assert len(_commands()) >= 15  # the walk reaches the subcommands of datagen too


def test_a_concept_has_one_spelling():
    commands = _commands()
    canonical = {prog: set(_options(p)) for prog, p in commands.items()}
    for old in ("--traj", "--struct", "--coarse-map", "--hold-map", "--cg-top", "--encoder"):
        assert not [prog for prog, names in canonical.items() if old in names], old
    # --map is the reconstruction mapping only; the mapping that made CG frames is --cg-map
    assert {prog for prog, names in canonical.items() if "--map" in names} == {"gdbm backmap", "gdbm morph"}
    for prog in ("gdbm backmap", "gdbm morph", "gdbm relax", "gdbm eval", "gdbm baseline"):
        assert "--cg-map" in canonical[prog], prog
    cg_map = _options(commands["gdbm backmap"])["--cg-map"]
    assert "default: --map" in cg_map.help  # the default of backmap's --cg-map is said, not silent
    # every OpenMM command takes --device cpu|cuda besides --platform
    for prog, names in canonical.items():
        if "--platform" in names:
            assert "--device" in names, prog
    # AA input is --aa/--aa-struct wherever a command reads AA frames to work on
    for prog in ("gdbm energy", "gdbm relax", "gdbm morph"):
        assert {"--aa", "--aa-struct"} <= canonical[prog], prog
    # every deprecated spelling names an option of its command and is hidden from the help
    for prog, p in commands.items():
        for old, new in deprecated_spellings(p).items():
            assert new in canonical[prog] and old not in canonical[prog], (prog, old)


@pytest.mark.parametrize("old, new", [
    (["energy", "--top", "t", "--traj", "x", "--struct", "s"], ["energy", "--top", "t", "--aa", "x", "--aa-struct", "s"]),
    (["relax", "--top", "t", "--aa", "a", "--cg", "c", "--map", "m", "-o", "o.xtc"],
     ["relax", "--top", "t", "--aa", "a", "--cg", "c", "--cg-map", "m", "-o", "o.xtc"]),
    (["morph", "--checkpoint", "k", "--top", "t", "--map", "r", "--coarse-map=m", "--aa", "x", "--scheme", "A",
      "-o", "o.xtc"],
     ["morph", "--checkpoint", "k", "--top", "t", "--map", "r", "--cg-map=m", "--aa", "x", "--scheme", "A",
      "-o", "o.xtc"]),
    (["backmap", "--checkpoint", "k", "--cg", "c", "--hold-map", "h", "-o", "o.xtc"],
     ["backmap", "--checkpoint", "k", "--cg", "c", "--cg-map", "h", "-o", "o.xtc"]),
    (["cgsim", "--cg-top", "i", "--ref", "r", "--start", "s", "--temperature", "300", "-o", "o"],
     ["cgsim", "--cg-itp", "i", "--ref", "r", "--start", "s", "--temperature", "300", "-o", "o"]),
    (["datagen", "liquid", "--smiles", "C", "--count", "1", "--temperature", "300", "--frames", "2", "-o", "o"],
     ["datagen", "liquid", "--smiles", "C", "--count", "1", "--temperature", "300", "--n-frames", "2", "-o", "o"]),
])
def test_old_spellings_still_work_with_one_note(old, new, capsys):
    parser = build_parser()
    was, now = parser.parse_args(old), parser.parse_args(new)
    assert vars(was) == vars(now)
    notes = capsys.readouterr().err.strip().splitlines()
    renamed = [w.split("=")[0] for w in old if w.startswith("--") and w.split("=")[0] not in new
               and w.split("=")[0] not in [n.split("=")[0] for n in new]]
    assert len(notes) == len(renamed) and all(" is deprecated; use --" in n for n in notes), notes
    prog = "gdbm " + " ".join(old[:2] if old[0] == "datagen" else old[:1])
    assert all(n.startswith(f"{prog}: note: ") for n in notes), notes


def test_two_spellings_of_one_option_are_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["morph", "--checkpoint", "k", "--top", "t", "--map", "r", "--coarse-map", "a",
                                   "--cg-map", "b", "--aa", "x", "--scheme", "A", "-o", "o.xtc"])
    assert stop.value.code == 2 and "are spellings of one option, --cg-map" in capsys.readouterr().err


@pytest.mark.parametrize("argv, threads, quiet", [
    (["backmap", "--threads", "1", "--checkpoint", "k", "--cg", "c", "-o", "o.xtc"], 1, False),
    (["--threads", "2", "backmap", "--checkpoint", "k", "--cg", "c", "-o", "o.xtc"], 2, False),
    (["--threads", "2", "energy", "--top", "t", "--aa", "x", "--threads", "3", "-q"], 3, True),
    (["--quiet", "datagen", "liquid", "--smiles", "C", "--count", "1", "--temperature", "300", "--n-frames", "2",
      "-o", "o"], None, True),
    (["datagen", "liquid", "--smiles", "C", "--count", "1", "--temperature", "300", "--n-frames", "2", "-o", "o",
      "--threads", "4", "--quiet"], 4, True),
])
def test_global_options_before_or_after_the_command(argv, threads, quiet):
    args = build_parser().parse_args(argv)
    assert (args.threads, args.quiet, args.verbose) == (threads, quiet, False)


def test_datagen_records_no_global_option_twice():
    from gdbm.cli.datagen import command_line

    args = build_parser().parse_args(["--threads", "2", "datagen", "liquid", "--smiles", "C", "--count", "1",
                                      "--temperature", "300", "--n-frames", "2", "-o", "o", "-q"])
    line = command_line(args)
    assert line.startswith("gdbm --threads 2 datagen liquid ") and line.count("--threads") == 1
    assert "--quiet" not in line and "--n-frames 2" in line
    assert set(GLOBAL_DESTS) <= set(vars(args))


def test_quiet_and_verbose_exclude_each_other(capsys):
    assert main(["energy", "--top", "t", "--aa", "x", "--quiet", "--verbose"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["gdbm energy: error: --quiet and --verbose exclude "
                                                            "each other"]


def test_openmm_platform_from_device():
    from gdbm.utils.devices import openmm_platform
    from gdbm.utils.errors import InputError

    assert openmm_platform(None, None, "CPU") == "CPU"
    assert openmm_platform("cuda", None, "CPU") == "CUDA"
    assert openmm_platform("cuda:0", "CUDA", None) == "CUDA"
    assert openmm_platform(None, "OpenCL", "CPU") == "OpenCL"
    with pytest.raises(InputError, match="--platform Reference was given"):
        openmm_platform("cpu", "Reference", None)
    with pytest.raises(InputError, match="OpenMM runs on cpu or cuda"):
        openmm_platform("mps", None, None)


# --- progress -----------------------------------------------------------------------------

def test_progress_is_plain_lines_in_a_log_and_nothing_when_quiet(monkeypatch):
    import gdbm.utils.progress as progress

    monkeypatch.setattr(progress, "LOG_INTERVAL", 1e9)  # a line per tenth only
    monkeypatch.setattr(progress, "MIN_GAP", 0.0)
    monkeypatch.setattr(progress, "QUICK", 0.0)
    monkeypatch.setenv(progress.VERBOSITY_VARIABLE, "0")
    log = io.StringIO()
    with progress.tqdm(total=100, desc="frames", unit="frame", file=log, mininterval=0) as bar:
        for _ in range(100):
            bar.update(1)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()
    assert len(lines) == 10 and lines[-1].startswith("frames: 100/100 frame (100%) [")
    assert all(progress.PLAIN_LINE.match(line) for line in lines), lines

    resumed = io.StringIO()  # a bar that starts part-way (a resumed run) and ends
    with progress.tqdm(total=10, initial=4, desc="fit", unit="step", file=resumed, mininterval=0) as bar:
        bar.update(6)
    assert resumed.getvalue().splitlines()[-1].startswith("fit: 10/10 step (100%) [")

    monkeypatch.setenv(progress.VERBOSITY_VARIABLE, "-1")
    quiet = io.StringIO()
    for _ in progress.tqdm(range(50), desc="energy", file=quiet, mininterval=0):
        pass
    assert quiet.getvalue() == ""


def test_progress_bar_on_a_terminal(monkeypatch):
    import gdbm.utils.progress as progress
    from tqdm import tqdm

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv(progress.VERBOSITY_VARIABLE, "0")
    bar = progress.tqdm(total=3, file=Terminal())
    assert type(bar) is tqdm
    bar.close()


# --- frames without a box -------------------------------------------------------------------

@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    folder = make_mini_cumene(tmp_path_factory.mktemp("vocabulary_cumene"))
    for name in ("aa.gro", "cg.gro"):  # the same frames without a box: a vacuum run, a PDB without CRYST1
        lines = (folder / name).read_text().splitlines()
        (folder / f"nobox_{name}").write_text("\n".join(lines[:-1] + ["   0.00000   0.00000   0.00000"]) + "\n")
    return folder


def test_energy_refuses_frames_without_a_box_unless_no_pbc(mini: Path, tmp_path: Path, capsys):
    argv = ["energy", "--top", str(mini / "topol.top"), "--aa", str(mini / "nobox_aa.gro")]
    outcome = run_main(argv + ["-o", str(tmp_path / "e.json")], capsys, tmp_path)
    lines = stderr_lines(outcome.err)
    assert outcome.code == 2 and len(lines) == 1 and "--no-pbc" in lines[0] and "has no box" in lines[0], outcome.err
    assert not (tmp_path / "e.json").exists()
    outcome = run_main(argv + ["--no-pbc", "-o", str(tmp_path / "e.json")], capsys, tmp_path)
    assert outcome.code == 0, outcome.err
    assert (tmp_path / "e.json").exists()


@pytest.fixture(scope="module")
def checkpoint(mini: Path, tmp_path_factory) -> Path:
    (mini / "tiny.yaml").write_text(tiny_fit_config(mini))
    run = tmp_path_factory.mktemp("vocabulary_run")
    outcome = run_main(["fit", "--config", str(mini / "tiny.yaml"), "-o", str(run), "--force"], None, run)
    assert outcome.code == 0, outcome.err + (outcome.exception or "")
    return run / "checkpoint.pt"


def test_backmap_refuses_cg_frames_without_a_box(mini: Path, checkpoint: Path, tmp_path: Path, capsys):
    """Local environments need a periodic box: no --no-pbc here, one line naming the file instead."""
    argv = ["backmap", "--top", str(mini / "topol.top"), "--map", str(mini / "CUM.yaml"), "--cg",
            str(mini / "nobox_cg.gro"), "--checkpoint", str(checkpoint), "--candidates", "1", "--gibbs", "0",
            "-o", str(tmp_path / "out.gro")]
    outcome = run_main(argv, capsys, tmp_path)
    lines = stderr_lines(outcome.err)
    assert outcome.code == 2 and len(lines) == 1, outcome.err
    assert "nobox_cg.gro" in lines[0] and "expected a periodic box" in lines[0] and "--no-pbc" not in lines[0]
    assert not (tmp_path / "out.gro").exists()
    outcome = run_main(["backmap", "--top", str(mini / "topol.top"), "--map", str(mini / "CUM.yaml"), "--cg",
                        str(mini / "cg.gro"), "--checkpoint", str(checkpoint), "--candidates", "1", "--gibbs", "0",
                        "-o", str(tmp_path / "out.gro")], capsys, tmp_path)
    assert outcome.code == 0, outcome.err + (outcome.exception or "")


@pytest.mark.parametrize("command", ["relax", "eval", "baseline"])
def test_periodic_commands_refuse_frames_without_a_box(mini: Path, tmp_path: Path, command: str, capsys):
    top, aa, cg, mapping = (str(mini / n) for n in ("topol.top", "nobox_aa.gro", "nobox_cg.gro", "CUM.yaml"))
    argv = {"relax": ["relax", "--top", top, "--aa", aa, "--cg", cg, "--cg-map", mapping, "-o", str(tmp_path / "r.gro")],
            "eval": ["eval", "--top", top, "--ref", aa, "--gen", f"x={aa}", "-o", str(tmp_path / "e")],
            "baseline": ["baseline", "--top", top, "--cg-map", mapping, "--cg", cg, "-o", str(tmp_path / "b.gro")]}
    outcome = run_main(argv[command], capsys, tmp_path)
    lines = stderr_lines(outcome.err)
    assert outcome.code == 2 and len(lines) == 1 and "has no box" in lines[0], outcome.err
    assert not [p for p in tmp_path.iterdir()]


def test_a_library_warning_is_one_line_naming_the_command(monkeypatch, capsys):
    import warnings

    import gdbm.cli.energy as energy

    def run(args):
        warnings.warn("a/b.gro: something odd\n  on two lines", UserWarning)
        return 0

    monkeypatch.setattr(energy, "run", run)
    assert main(["energy", "--top", "t", "--aa", "x"]) == 0
    assert capsys.readouterr().err == "gdbm energy: warning: a/b.gro: something odd on two lines\n"
