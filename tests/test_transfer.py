"""Training on several systems at once, and a model applied to another force field's types."""

from __future__ import annotations

from pathlib import Path

import pytest

from gdbm.cli.main import main
from gdbm.data import read_frames
from gdbm.study.demo import example_folder
from gdbm.utils.errors import InputError
from gdbm.training.trainer import build_trainer
from gdbm.training.config import load_config

TINY = ("model:\n  voxel: {resolution: 4, channels: 4, noise_dim: 4, n_blocks: 1}\n"
        "training: {batch_size: 4, n_critic: 1, steps: 1, threads: 1}\n")


def _cumene_source() -> str:
    folder = example_folder("cumene")
    return (f"  topology: {folder / 'topol.top'}\n  mapping: {folder / 'CUM.yaml'}\n"
            f"  aa: {folder / 'aa.gro'}\n")


def test_two_systems_train_together_with_one_feature_layout(tmp_path: Path, sps: Path):
    config_file = tmp_path / "two.yaml"
    config_file.write_text("data:\n"
                           f"- topology: {sps / 'topol.top'}\n  mapping: {sps / 'PS1.map'}\n"
                           f"  aa: {sps / 'train_t568' / 'aa' / '90.gro'}\n  cg: {sps / 'train_t568' / 'cg' / '90.gro'}\n"
                           "- " + _cumene_source()[2:] + TINY)
    config = load_config(config_file)
    assert len(config.sources) == 2
    trainer = build_trainer(config, tmp_path / "run")
    dataset = trainer.dataset
    assert dataset.spec.atom_types == ("C", "C_AR", "H", "H_AR", "c3", "ca", "ha", "hc")  # sPS's and GAFF2's
    assert dataset.spec.bead_types == ("A1r", "A2r", "B1u", "B2d", "M", "R")
    assert len(dataset) == sum(len(part) for part in dataset.parts)
    assert dataset.parts[1].spec == dataset.spec  # both systems encode into the same layout
    assert trainer.fit().step == 1


def test_a_model_of_other_molecules_backmaps_with_type_aliases(tmp_path: Path, sps: Path):
    config_file = tmp_path / "cumene.yaml"
    config_file.write_text("data:\n" + _cumene_source() + TINY)
    run = tmp_path / "run"
    assert main(["fit", "--config", str(config_file), "-o", str(run)]) == 0
    train = sps / "train_t568"
    args = ["backmap", "--checkpoint", str(run / "checkpoint.pt"), "--top", str(sps / "topol.top"),
            "--map", str(sps / "PS1.map"), "--cg", str(train / "cg" / "90.gro"), "--gibbs", "0",
            "--candidates", "1", "-o", str(tmp_path / "out.gro")]
    with pytest.raises(InputError, match="type-alias"):  # sPS types are not GAFF2's
        _backmap(args)
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text("atoms: {C: c3, C_AR: ca, H: hc, H_AR: ha}\nbeads: {A1r: M, A2r: M, B1u: R, B2d: R}\n")
    assert main([*args, "--type-alias", str(aliases)]) == 0
    assert read_frames(tmp_path / "out.gro").positions.shape == (1, 5832, 3)


def _backmap(args: list[str]) -> None:
    """The backmap command without the CLI's error printing, so the error itself can be checked."""
    import argparse

    from gdbm.cli import backmap as backmap_cli

    parser = argparse.ArgumentParser()
    backmap_cli.add_parser(parser.add_subparsers())
    namespace = parser.parse_args(args)
    namespace.run(namespace)
