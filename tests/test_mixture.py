"""Systems with several molecule types (issue 21): a mapping per type, a topology with several
[ molecules ], in loading, training and backmapping. The mixture here is built from the shipped
cumene example (GAFF2, YAML mapping) and the published octane set (its .map), without datagen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from gdbm.cli.main import main
from gdbm.data import read_frames, write_frames
from gdbm.data.trajectory import Frames
from gdbm.topology.mapfiles import load_mapping, write_map
from gdbm.topology.system import load_mapped_system, split_paths
from gdbm.training.config import load_config
from gdbm.utils.errors import InputError

CUMENE = Path(__file__).resolve().parents[1] / "gdbm" / "resources" / "examples" / "cumene"
N_CUM, N_OCT = 6, 6  # molecules of each type
N_FRAMES = 2
SHIFT = 2.6  # nm: the octanes sit beside the cumenes, along x
# GROMOS-like LJ for the octane types (L49C.itp has no [ atomtypes ]), in the cumene file's sigma/epsilon form
OCTANE_TYPES = ("C              6  12.011000  0.00000000  A     0.3207         0.3519\n"
                "HC             1   1.008000  0.00000000  A     0.2318         0.1180\n")


def aa_topology(shared_data: Path, molecules: list[tuple[str, int]], extra_cumene_name: str | None = None) -> str:
    """The cumene topology with the octane molecule type (and types) added and ``molecules`` listed."""
    text = (CUMENE / "topol.top").read_text()
    text = text[:text.index("[ system ]")]
    text = re.sub(r"(\[ atomtypes \]\n;[^\n]*\n)", lambda m: m.group(1) + OCTANE_TYPES, text, count=1)
    if extra_cumene_name:  # a second, identical molecule type of another name
        block = text[text.index("[ moleculetype ]"):]
        text += "\n" + block.replace("CUM          3", f"{extra_cumene_name}          3", 1)
    text += f'\n#include "{shared_data / "octane" / "L49C.itp"}"\n\n[ system ]\nmixture\n\n[ molecules ]\n'
    return text + "".join(f"{name} {count}\n" for name, count in molecules)


@pytest.fixture(scope="module")
def mixture(tmp_path_factory, shared_data: Path) -> Path:
    """6 cumenes and 6 octanes in one box: topology, mappings (CUM.yaml, L49C.map), CG .itp files, AA frames."""
    folder = tmp_path_factory.mktemp("mixture")
    octane = shared_data / "octane"
    (folder / "topol.top").write_text(aa_topology(shared_data, [("CUM", N_CUM), ("L49C", N_OCT)]))
    for source in (CUMENE / "CUM.yaml", CUMENE / "CUM_cg.itp", octane / "L49C.map", octane / "L49C_cg.itp"):
        (folder / source.name).write_text(source.read_text())
    cum = read_frames(CUMENE / "aa.xtc", CUMENE / "aa.gro").subset(slice(0, N_FRAMES))
    (folder / "aa").mkdir()
    for k, name in enumerate(("350.gro", "450.gro")):
        oct_ = read_frames(octane / "aa" / name)
        n, m = 21 * N_CUM, 26 * N_OCT
        positions = torch.cat([cum.positions[k:k + 1, :n], oct_.positions[:, :m] + torch.tensor([SHIFT, 0, 0])], 1)
        box = torch.diag(torch.tensor([SHIFT + 3.9, 3.9, 3.9])).unsqueeze(0)
        frame = Frames(positions, box, [name], cum.names[:n] + oct_.names[:m], cum.resnames[:n] + oct_.resnames[:m],
                       cum.resids[:n] + [r + N_CUM for r in oct_.resids[:m]])
        write_frames(folder / "aa" / f"{k}.gro", frame)
    (folder / "tiny.yaml").write_text(
        "data:\n  topology: topol.top\n  mapping: [CUM.yaml, L49C.map]\n  aa: aa\n"
        "environment: {cutoff: 0.6}\n"
        "model:\n  voxel: {resolution: 4, channels: 4, noise_dim: 4, n_blocks: 1}\n"
        "training: {batch_size: 2, n_critic: 1, steps: 1, threads: 1}\n")
    return folder


def test_split_paths_takes_lists_commas_and_single_files(tmp_path: Path):
    assert split_paths("a.yaml") == [Path("a.yaml")]
    assert split_paths("a.yaml,b.map") == split_paths(["a.yaml", "b.map"]) == [Path("a.yaml"), Path("b.map")]
    assert split_paths(["a.yaml,b.map", Path("c.map")]) == [Path("a.yaml"), Path("b.map"), Path("c.map")]
    odd = tmp_path / "x,y.map"
    odd.write_text("")
    assert split_paths(str(odd)) == [odd]  # an existing file keeps its comma
    assert split_paths(None) == []


def test_two_molecule_types_load_with_a_mapping_each(mixture: Path):
    system = load_mapped_system(mixture / "topol.top", [mixture / "CUM.yaml", mixture / "L49C.map"], partial=False)
    assert [b.name for b in system.aa.molecules] == ["CUM"] * N_CUM + ["L49C"] * N_OCT
    assert system.cg.n_atoms == system.mapping.n_beads == 3 * N_CUM + 4 * N_OCT
    assert [b.name for b in system.cg.molecules] == [b.name for b in system.aa.molecules]
    assert str(system.cg_source) == f"{mixture / 'CUM_cg.itp'} + {mixture / 'L49C_cg.itp'}"  # found by convention
    home = system.mapping.home_bead
    assert int(home[:21 * N_CUM].max()) < 3 * N_CUM <= int(home[21 * N_CUM:].min())  # octane atoms on octane beads
    assert set(system.mapping.bead_types) == {"M", "R", "B"}
    # the same with the files joined by a comma, in the other order, and with a CG .top
    (mixture / "cg.top").write_text(f'#include "CUM_cg.itp"\n#include "L49C_cg.itp"\n[ system ]\nx\n'
                                    f"[ molecules ]\nCUM {N_CUM}\nL49C {N_OCT}\n")
    again = load_mapped_system(mixture / "topol.top", f"{mixture / 'L49C.map'},{mixture / 'CUM.yaml'}",
                               mixture / "cg.top")
    assert torch.equal(again.mapping.membership, system.mapping.membership)
    assert torch.equal(again.mapping.home_bead, home) and again.cg_source == mixture / "cg.top"
    (mixture / "cg.top").unlink()
    # a CG topology from .itp files given by the caller
    given = load_mapped_system(mixture / "topol.top", [mixture / "CUM.yaml", mixture / "L49C.map"],
                               [mixture / "L49C_cg.itp", mixture / "CUM_cg.itp"])
    assert torch.equal(given.mapping.home_bead, home)


def test_a_map_file_goes_to_its_molecule_type_by_size_and_ambiguity_is_refused(mixture: Path, shared_data: Path,
                                                                                tmp_path: Path):
    octane = tmp_path / "octane.map"  # its name names no type: 26 atoms and 4 beads fit L49C only
    octane.write_text((mixture / "L49C.map").read_text())
    system = load_mapped_system(mixture / "topol.top", [mixture / "CUM.yaml", octane], f"{mixture / 'CUM_cg.itp'},"
                                f"{mixture / 'L49C_cg.itp'}")
    assert system.mapping.n_beads == 3 * N_CUM + 4 * N_OCT
    with pytest.raises(InputError, match="a second mapping for molecule 'L49C'"):
        load_mapped_system(mixture / "topol.top", [mixture / "CUM.yaml", mixture / "L49C.map", octane],
                           [mixture / "CUM_cg.itp", mixture / "L49C_cg.itp"])
    with pytest.raises(InputError, match="no mapping for molecule 'L49C'"):
        load_mapped_system(mixture / "topol.top", mixture / "CUM.yaml")
    # two types of one size (CUM and its twin CUX): a .map named for neither is ambiguous
    (tmp_path / "topol.top").write_text(aa_topology(shared_data, [("CUM", 2), ("CUX", 2)], extra_cumene_name="CUX"))
    (tmp_path / "CUX_cg.itp").write_text((CUMENE / "CUM_cg.itp").read_text().replace("CUM", "CUX"))
    (tmp_path / "CUM_cg.itp").write_text((CUMENE / "CUM_cg.itp").read_text())
    write_map(load_mapping(CUMENE / "CUM.yaml"), tmp_path / "cumene.map")
    (tmp_path / "other.map").write_text((tmp_path / "cumene.map").read_text())
    with pytest.raises(InputError, match=r"fit several: CUM, CUX.*name the file after its molecule type"):
        load_mapped_system(tmp_path / "topol.top", [tmp_path / "cumene.map", tmp_path / "other.map"])
    rest = load_mapped_system(tmp_path / "topol.top", [tmp_path / "cumene.map", CUMENE / "CUM.yaml"])
    assert rest.mapping.n_beads == 12  # CUM has its YAML: the .map goes to the one type left, CUX
    (tmp_path / "CUX.map").write_text((tmp_path / "cumene.map").read_text())  # named: no doubt
    twins = load_mapped_system(tmp_path / "topol.top", [tmp_path / "CUX.map", CUMENE / "CUM.yaml"])
    assert twins.mapping.n_beads == 12 and twins.mapping.bead_types == ["M", "M", "R"] * 4
    with pytest.raises(InputError, match="its 26 atoms and 4 beads fit none"):
        load_mapped_system(tmp_path / "topol.top", [tmp_path / "CUX.map", CUMENE / "CUM.yaml", mixture / "L49C.map"])
    (tmp_path / "ABC.yaml").write_text((CUMENE / "CUM.yaml").read_text().replace("molecule: CUM", "molecule: ABC"))
    with pytest.raises(InputError, match="molecule 'ABC', which .* does not hold"):
        load_mapped_system(tmp_path / "topol.top", [tmp_path / "CUX.map", CUMENE / "CUM.yaml", tmp_path / "ABC.yaml"])


def test_training_config_takes_a_list_of_mappings(mixture: Path):
    config = load_config(mixture / "tiny.yaml")
    assert config.sources[0].mapping == [mixture / "CUM.yaml", mixture / "L49C.map"]
    text = (mixture / "tiny.yaml").read_text()
    (mixture / "comma.yaml").write_text(text.replace("[CUM.yaml, L49C.map]", "CUM.yaml, L49C.map"))
    assert load_config(mixture / "comma.yaml").sources[0].mapping == config.sources[0].mapping
    (mixture / "one.yaml").write_text(text.replace("[CUM.yaml, L49C.map]", "[CUM.yaml]"))
    assert load_config(mixture / "one.yaml").sources[0].mapping == mixture / "CUM.yaml"  # a list of one: that file


def test_fit_and_backmap_a_mixture(mixture: Path, tmp_path: Path):
    from gdbm.sampling.backmapper import Backmapper, SamplerConfig

    run = tmp_path / "run"
    assert main(["--threads", "1", "fit", "--config", str(mixture / "tiny.yaml"), "-o", str(run), "--steps", "1"]) == 0
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=False)
    features = checkpoint["features"]  # one vocabulary over both molecule types
    assert set(features["bead_types"]) == {"B", "M", "R"}
    assert set(features["atom_types"]) == {"c3", "ca", "hc", "ha", "C", "HC"}
    aa = read_frames(mixture / "aa")
    system = load_mapped_system(mixture / "topol.top", [mixture / "CUM.yaml", mixture / "L49C.map"])
    cg = Frames(system.mapping.map_positions(aa.positions, aa.boxes), aa.boxes, aa.labels, system.cg.names,
                system.cg.resnames, system.cg.resids.tolist())
    write_frames(tmp_path / "cg.gro", cg.subset([0]))
    sampler = Backmapper.from_checkpoint(run / "checkpoint.pt", mixture / "topol.top",
                                         [mixture / "CUM.yaml", mixture / "L49C.map"],
                                         SamplerConfig(n_gibbs=0, candidates=1, seed=0))
    out = sampler.backmap(cg.subset([0]), progress=False)
    assert out.positions.shape == (1, 21 * N_CUM + 26 * N_OCT, 3) and bool(torch.isfinite(out.positions).all())
    # the command line: --map repeated, one file each
    assert main(["--threads", "1", "backmap", "--checkpoint", str(run / "checkpoint.pt"),
                 "--top", str(mixture / "topol.top"), "--map", str(mixture / "CUM.yaml"),
                 "--map", str(mixture / "L49C.map"), "--cg", str(tmp_path / "cg.gro"), "--gibbs", "0",
                 "--candidates", "1", "-o", str(tmp_path / "gen.gro")]) == 0
    assert read_frames(tmp_path / "gen.gro").positions.shape == (1, 21 * N_CUM + 26 * N_OCT, 3)


@pytest.mark.parametrize("argv, expected", [
    (["backmap", "--map", "A.yaml", "--map", "B.map"], ("map", "A.yaml,B.map")),
    (["backmap", "--map", "A.yaml,B.map"], ("map", "A.yaml,B.map")),
    (["backmap", "--map", "A.yaml"], ("map", "A.yaml")),  # one file: as before
    (["backmap", "--map", "A.yaml", "--cg-map", "a.map", "--cg-map", "b.map"], ("cg_map", "a.map,b.map")),
    (["eval", "--cg-map", "a.map", "--cg-map", "b.map"], ("cg_map", "a.map,b.map")),
    (["relax", "--cg-map", "a.map", "--cg-map", "b.map"], ("cg_map", "a.map,b.map")),
])
def test_mapping_options_take_one_file_per_molecule_type(argv, expected):
    from gdbm.cli.main import build_parser

    required = {"backmap": ["--cg", "x.gro", "--checkpoint", "c.pt", "-o", "o.gro"],
                "eval": ["--top", "t.top", "--ref", "r.xtc", "--gen", "a=b.xtc", "-o", "out"],
                "relax": ["--top", "t.top", "--aa", "a.xtc", "--cg", "c.xtc", "-o", "o.xtc"]}[argv[0]]
    args = build_parser().parse_args([*argv, *required])
    assert getattr(args, expected[0]) == expected[1]
