"""gdbm eval: answers known in advance on the real sPS frames, the metric registry, and the command end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gdbm.analysis import metrics as registry
from gdbm.analysis import report
from gdbm.analysis.energies import ENERGY_KEYS
from gdbm.analysis.evaluate import Evaluator, compare
from gdbm.analysis.metrics import Metric, Observation, register
from gdbm.analysis.rdf import RDFCounts
from gdbm.cli.main import main
from gdbm.data import read_frames, write_frames
from gdbm.data.trajectory import Frames
from gdbm.topology.system import load_mapped_system
from gdbm.utils.errors import InputError


@pytest.fixture(scope="module")
def system(sps: Path):
    return load_mapped_system(sps / "topol.top", sps / "PS1_cg_fritz.map")


@pytest.fixture(scope="module")
def frames(sps: Path) -> Frames:
    return read_frames(sps / "test_t568" / "aa.xtc", sps / "test_t568" / "aa.gro").subset([0, 1])


def _cg_frames(system, frames: Frames) -> Frames:
    beads = system.mapping.map_positions(frames.positions.double(), frames.boxes.double()).float()
    return Frames(beads, frames.boxes, frames.labels, system.mapping.bead_names, ["PS1"] * beads.shape[1],
                  [1] * beads.shape[1])


def test_a_set_against_itself_scores_zero_and_maps_onto_its_cg(system, frames):
    ev = Evaluator(system.aa, mapping=system.mapping, per_type_rdf=False)
    cg = _cg_frames(system, frames)
    obs = ev.observe(frames, cg)
    metrics = compare(obs, ev.observe(frames, cg))
    jsds = {k: v for k, v in metrics.items()
            if (k.startswith("all_") or k.endswith("_jsd") or "/" in k) and not k.startswith("lj_pair/")}
    assert len(jsds) > 20 and all(v == 0.0 for v in jsds.values())
    assert metrics["rdf_mae"] == 0.0 and metrics["rdf_mae_carbon"] == 0.0
    assert metrics["cg_rmsd"] < 1e-6 and metrics["cg_max_dev"] < 1e-5
    assert metrics["clash_pairs_per_frame"] == 0 and metrics["frac_bonds_over_0.2nm"] == 0.0


def test_energies_per_molecule_sum_to_frame_totals(system, frames):
    ev = Evaluator(system.aa, per_type_rdf=False)
    obs = ev.observe(frames.subset([0]))
    totals = ev.model(frames.positions[:1].double(), frames.boxes[:1].double())
    assert float(obs.energies["lj"].sum()) == pytest.approx(float(totals.lj[0]), rel=1e-5)
    split = obs.energies["lj_intra"] + obs.energies["lj_inter"]
    assert torch.allclose(split, obs.energies["lj"], rtol=1e-9, atol=1e-6)
    assert float(obs.energies["total"].sum()) == pytest.approx(float(totals.total[0]), rel=1e-5)


def test_displaced_atoms_are_seen(system, frames):
    ev = Evaluator(system.aa, mapping=system.mapping, per_type_rdf=False)
    moved = Frames(frames.positions.clone(), frames.boxes, frames.labels, frames.names, frames.resnames, frames.resids)
    moved.positions[:, 5] = moved.positions[:, 200] + torch.tensor([0.0, 0.0, 0.05])  # C6 onto another chain
    metrics = compare(ev.observe(frames), ev.observe(moved, _cg_frames(system, frames)))
    assert metrics["clash_pairs_per_frame"] >= 1 and metrics["min_nonexcluded_distance"] < 0.1
    assert metrics["all_bonds"] > 0 and metrics["cg_max_dev"] > 0.005


def test_cli_writes_metrics_summary_and_plots(tmp_path: Path, sps: Path, system, frames):
    ref = write_frames(tmp_path / "ref.xtc", frames)
    gen = write_frames(tmp_path / "gen.xtc", frames.subset([1, 0]))
    cg = write_frames(tmp_path / "cg.pdb", _cg_frames(system, frames))
    out = tmp_path / "eval"
    args = ["eval", "--top", str(sps / "topol.top"), "--cg-map", str(sps / "PS1_cg_fritz.map"), "--ref", str(ref),
            "--ref-struct", str(sps / "test_t568" / "aa.gro"), "--gen", f"swapped={gen}", "--cg", str(cg),
            "--no-per-type-rdf", "-o", str(out)]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())["sets"]
    assert set(metrics) == {"reference half vs half", "swapped", "reference"}
    swapped = metrics["swapped"]
    for key in ("all_bonds", "all_angles", "all_dihedrals", "lj_jsd", "rdf_mae", "cg_rmsd", "bond/C-C"):
        assert key in swapped
    assert swapped["cg_rmsd"] > 0.1  # frames paired with the wrong CG frames
    assert swapped["all_angles"] == 0.0  # same frames, other order
    assert {p.name for p in out.glob("*.png")} >= {"bonds.png", "angles.png", "propers.png", "rdf.png", "energies.png"}
    assert "| swapped |" in (out / "summary.md").read_text()
    assert main(args) == 2  # no overwrite without --force


def test_cli_frame_range_slices_reference_cg_and_full_generated_sets(tmp_path: Path, sps: Path, system, frames):
    ref = write_frames(tmp_path / "ref.xtc", frames)
    full = write_frames(tmp_path / "full.xtc", frames.subset([1, 0]))  # covers every reference frame: sliced
    part = write_frames(tmp_path / "part.xtc", frames.subset([1]))  # already the selected frame: kept
    cg = write_frames(tmp_path / "cg.pdb", _cg_frames(system, frames))
    out = tmp_path / "eval"
    args = ["eval", "--top", str(sps / "topol.top"), "--cg-map", str(sps / "PS1_cg_fritz.map"), "--ref", str(ref),
            "--ref-struct", str(sps / "test_t568" / "aa.gro"), "--gen", f"full={full}", "--gen", f"part={part}",
            "--cg", str(cg), "--no-per-type-rdf", "--frames", "1:2", "-o", str(out)]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())["sets"]
    assert metrics["full"]["n_frames"] == metrics["part"]["n_frames"] == 1
    assert metrics["full"]["cg_rmsd"] > 0.1  # frame 0 of the reversed set against CG frame 1
    assert metrics["part"]["cg_rmsd"] < 0.01  # frame 1 against CG frame 1
    assert main(args[:-4] + ["--frames", "5:9", "-o", str(tmp_path / "none")]) == 2


def test_a_set_longer_than_the_window_is_said_to_be_samples_and_a_ragged_one_is_refused(frames):
    """A set made for a longer window (2 frames against --frames of 1 of 3 reference frames) is taken as 2
    samples of the one frame, with a warning; one that fits neither the reference nor the window is an error."""
    three = Frames(torch.cat([frames.positions, frames.positions[:1]]), torch.cat([frames.boxes, frames.boxes[:1]]),
                   frames.labels + frames.labels[:1], frames.names, frames.resnames, frames.resids)
    with pytest.warns(UserWarning, match="taken as 2 samples"):
        assert len(report._samples_in_window(three.subset([0, 1]), 3, slice(0, 1), "two")) == 2
    assert len(report._samples_in_window(three.subset([1]), 3, slice(1, 2), "one")) == 1
    with pytest.raises(InputError, match="holds 2 frames"):
        report._samples_in_window(three.subset([0, 1]), 3, slice(0, 3), "ragged")


class _SyntheticEvaluator:
    """Observations made up from the frame count alone: the registry's plumbing without the physics."""

    def observe(self, frames: Frames, cg: Frames | None = None, label: str = "", cg_offset: int = 0) -> Observation:
        n = len(frames)
        gen = torch.Generator().manual_seed(n)
        rdf = RDFCounts(["all", "carbon"], torch.rand(2, 120, generator=gen, dtype=torch.float64),
                        torch.ones(2, dtype=torch.float64), 0.01, 1.2)
        return Observation(n, {"all_bonds": 0.15 + 0.01 * torch.rand(50 * n, generator=gen)},
                           {k: torch.randn(n, 4, generator=gen) for k in ENERGY_KEYS}, rdf,
                           torch.zeros(0), torch.zeros(0))


def test_a_registered_metric_reaches_metrics_summary_and_plots(tmp_path: Path, frames, monkeypatch):
    monkeypatch.setattr(registry, "METRICS", dict(registry.METRICS))  # the toy leaves with the test

    def bond_spread(ref: Observation, gen: Observation) -> dict[str, float]:
        return {"bond_spread_ratio": float(gen.geometry["all_bonds"].std() / ref.geometry["all_bonds"].std())}

    def plot_toy(observations: dict[str, Observation], directory: Path) -> list[Path]:
        path = directory / "toy.txt"
        path.write_text(" ".join(observations))
        return [path]

    register(Metric("bond_spread", compare=bond_spread, columns=(("bond_spread_ratio", "bond spread"),),
                    plot=plot_toy))
    with pytest.raises(ValueError, match="already registered"):
        register(Metric("bond_spread", compare=bond_spread))
    metrics = report.evaluate_sets(_SyntheticEvaluator(), frames, {"copy": frames.subset([1, 0])}, tmp_path)
    assert metrics["copy"]["bond_spread_ratio"] > 0 and "bond_spread_ratio" not in metrics["reference"]
    assert json.loads((tmp_path / "metrics.json").read_text())["sets"]["copy"]["bond_spread_ratio"] > 0
    header = (tmp_path / "summary.md").read_text().splitlines()[0]
    assert header.endswith("| E mean | bond spread |") and "| bonds JSD |" in header
    assert (tmp_path / "toy.txt").read_text() == "reference copy" and (tmp_path / "energies.png").exists()
    assert report.SUMMARY_COLUMNS[-1] == ("bond_spread_ratio", "bond spread")  # the name gdbm.study reads


def test_a_metric_computes_one_way():
    with pytest.raises(ValueError, match="exactly one"):
        Metric("neither")


def test_lj_by_type_pair_adds_up_to_the_lj_energy(system, frames):
    """The per-type-pair breakdown is the frame's LJ energy split, not another estimate of it."""
    obs = Evaluator(system.aa, per_type_rdf=False).observe(frames)
    per_frame = obs.energies["lj"].sum(-1)  # [F]
    split = torch.stack(list(obs.lj_by_pair.values())).sum(0)  # [F]
    assert torch.allclose(split, per_frame, rtol=1e-6, atol=1e-3)
    assert {"H-H intra", "H-H inter", "C_AR-C_AR inter"} <= set(obs.lj_by_pair)
    assert obs.scalars["lj_pair/H-H inter"] == float(obs.lj_by_pair["H-H inter"].mean())
    half = obs.merge(obs)
    assert half.lj_by_pair["H-H inter"].shape == (2 * len(frames),)


def test_torsions_without_a_term_are_the_ring_turns_and_the_side_chain_along_the_backbone(system):
    """sPS has no dihedral term for the phenyl ring's turn: 'torsion/' measures it (4 paths per ring)."""
    from gdbm.analysis.geometry import family_index, torsion_index, type_keys

    top = system.aa
    index = torsion_index(top)
    names, code = type_keys(top, index, "torsion")
    assert names == ["C-C-C-C_AR", "C-C-C_AR-C_AR"]
    rings = sum(1 for t in top.types if t == "C_AR") // 6
    assert int((code == 1).sum()) <= 4 * rings and int((code == 1).sum()) > 3 * rings
    propers = {tuple(r) for r in family_index(top, "proper").tolist()}
    assert not any(tuple(r) in propers or tuple(r[::-1]) in propers for r in index.tolist())
    assert all(top.elements[a] != "H" for a in index.flatten().tolist())
