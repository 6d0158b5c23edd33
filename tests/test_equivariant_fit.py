"""The e3nn conditioner behind the shared trainer, sampler and CLI: no alignment, no turns, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gdbm.cli.main import main
from gdbm.data import read_frames, write_frames
from gdbm.data.trajectory import Frames
from gdbm.utils.pbc import minimum_image
from gdbm.training.trainer import build_trainer
from gdbm.training.config import ModelConfig, load_config

E3NN = ("model:\n  conditioner: e3nn\n  e3nn: {channels: 4, hidden: 8, radial_hidden: 8, n_radial: 4, refinements: 2}\n"
        "training: {batch_size: 2, n_critic: 1, steps: 2, pretrain_steps: 1, threads: 1, checkpoint_every: 1}\n")


@pytest.fixture(scope="module")
def one_chain(tmp_path_factory, sps: Path) -> Path:
    """The sPS force field with one chain and its 20 beads cut from the first training frame."""
    folder = tmp_path_factory.mktemp("one_chain")
    top = (sps / "topol.top").read_text().replace('#include "topol_PS1.itp"', f'#include "{sps / "topol_PS1.itp"}"')
    (folder / "topol.top").write_text(top.replace("PS1       36", "PS1       1"))
    for name in ("PS1_cg.itp", "PS1.map"):
        (folder / name).write_text((sps / name).read_text())
    for kind, n in (("cg", 20), ("aa", 162)):
        full = read_frames(sps / "train_t568" / kind / "90.gro")
        write_frames(folder / f"{kind}.gro", Frames(full.positions[:, :n], full.boxes, full.labels, full.names[:n],
                                                    full.resnames[:n], full.resids[:n]))
    (folder / "e3nn.yaml").write_text("data:\n  topology: topol.top\n  mapping: PS1.map\n  aa: aa.gro\n  cg: cg.gro\n"
                                      + E3NN)
    return folder


def test_encoders_declare_whether_they_need_alignment():
    assert ModelConfig(conditioner="voxel").entry.aligned
    assert not ModelConfig(conditioner="e3nn").entry.aligned
    # the key's old name, as in configs and checkpoints written before the registry
    assert ModelConfig.model_validate({"encoder": "e3nn"}).conditioner == "e3nn"


def test_e3nn_training_sees_unrotated_environments(one_chain: Path, tmp_path: Path):
    trainer = build_trainer(load_config(one_chain / "e3nn.yaml"), tmp_path / "run")
    eye = torch.eye(3).expand_as(trainer.dataset.frames.rotation)
    assert torch.equal(trainer.dataset.frames.rotation, eye)
    batch = trainer._batch(trainer._rng(0, 0))
    assert torch.equal(batch.rotation, torch.eye(3).expand_as(batch.rotation))
    sample = trainer.dataset[0]
    aa = read_frames(one_chain / "aa.gro")
    # local positions are the box positions minus the bead (nearest image): nothing turned
    shift = minimum_image((aa.positions[0, sample.atoms] - sample.centre).unsqueeze(0), aa.boxes[:1])[0]
    torch.testing.assert_close(sample.positions, shift, atol=1e-5, rtol=0)
    state = trainer.fit(progress=False)
    assert state.step == 2
    assert all(torch.isfinite(p).all() for p in state.generator.parameters())


def test_cli_fit_e3nn_learn_the_order_then_backmap(one_chain: Path):
    run, out = one_chain / "run", one_chain / "out.gro"
    config = str(one_chain / "e3nn.yaml")
    assert main(["fit", "--config", config, "-o", str(run), "--steps", "1"]) == 0
    assert main(["fit", "--config", config, "-o", str(run), "--resume"]) == 0  # continues to 2 steps
    policy = one_chain / "policy.pt"
    assert main(["order", "--checkpoint", str(run / "checkpoint.pt"), "-o", str(policy), "--iterations", "1",
                 "--batch", "2", "--orders", "2"]) == 0
    args = ["backmap", "--checkpoint", str(run / "checkpoint.pt"), "--top", str(one_chain / "topol.top"),
            "--map", str(one_chain / "PS1.map"), "--cg", str(one_chain / "cg.gro"), "-o", str(out),
            "--gibbs", "1", "--candidates", "2", "--ordering", str(policy)]
    assert main(args) == 0
    frames = read_frames(out)
    cg = read_frames(one_chain / "cg.gro")
    assert frames.positions.shape == (1, 162, 3) and bool(torch.isfinite(frames.positions).all())
    from gdbm.topology.system import load_mapped_system

    home = load_mapped_system(one_chain / "topol.top", one_chain / "PS1.map").mapping.home_bead
    reach = minimum_image(frames.positions - cg.positions[:, home], cg.boxes).norm(dim=-1)
    assert float(reach.max()) < 1.0  # untrained, but placed from its own bead, not from the box origin
