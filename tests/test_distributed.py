"""Training under torchrun with two CPU processes (gloo): the ranks stay identical, rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from gdbm.utils.distributed import Distributed
from gdbm.utils.errors import InputError
from gdbm.training.trainer import build_trainer, shard_draw
from gdbm.training.config import load_config

WORKER = Path(__file__).parent / "workers" / "ddp_train.py"


@pytest.fixture()
def tiny_config(tmp_path: Path, sps: Path) -> Path:
    config = {
        "data": {"topology": str(sps / "topol.top"), "mapping": str(sps / "PS1.map"),
                 "aa": str(sps / "train_t568" / "aa" / "90.gro"), "cg": str(sps / "train_t568" / "cg" / "90.gro")},
        "model": {"conditioner": "voxel", "voxel": {"resolution": 4, "length": 1.2, "channels": 4, "noise_dim": 4,
                                                "n_blocks": 1, "norm": "layer"}},
        # one supervised step, then one critic + one generator update: every DDP path runs
        "training": {"batch_size": 4, "n_critic": 1, "steps": 2, "pretrain_steps": 1, "gp_fraction": 0.5,
                     "checkpoint_every": 1, "log_every": 1, "threads": 1, "lr_critic": 1e-2, "lr_generator": 1e-2},
        "prior": {"mode": "match", "weight": 1e-6, "ramp_start": 0, "ramp_end": 1},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_two_processes_keep_identical_parameters(tiny_config: Path, tmp_path: Path):
    result = tmp_path / "result.json"
    run = torchrun(str(WORKER), str(tiny_config), str(tmp_path / "run"), str(result), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(result.read_text())
    assert report["world_size"] == 2 and report["step"] == 2
    for name in ("generator", "critic"):
        assert report[name]["change"] > 1e-4, f"the {name} did not train"  # otherwise equality proves nothing
        assert report[name]["max_rank_difference"] == 0.0
    assert report["mean"] == {"shared": 0.5, "only0": 1.0, "only1": 1.0}


def test_fit_cli_under_torchrun_writes_once(tiny_config: Path, tmp_path: Path):
    run = torchrun("-m", "gdbm", "fit", "--config", str(tiny_config), "-o", str(tmp_path / "run"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("trained 2 steps") == 1 and "on 2 processes" in run.stdout
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,") and [line.split(",")[0] for line in log[1:]] == ["1", "2"]
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert checkpoint["step"] == 2


def test_batch_must_split_evenly_over_processes(tiny_config: Path, tmp_path: Path):
    config = load_config(tiny_config, {"training": {"batch_size": 5}})
    with pytest.raises(InputError, match="not divisible by the 2 processes"):
        build_trainer(config, tmp_path / "run", Distributed(rank=0, world_size=2))


def test_ranks_draw_from_disjoint_shards():
    drawn = {rank: shard_draw(11, 200, Distributed(rank=rank, world_size=2), torch.Generator().manual_seed(rank))
             for rank in (0, 1)}
    assert set(drawn[0].tolist()) == {0, 2, 4, 6, 8, 10} and set(drawn[1].tolist()) == {1, 3, 5, 7, 9}
    one = shard_draw(11, 5, Distributed(), torch.Generator().manual_seed(3))
    assert torch.equal(one, torch.randint(11, (5,), generator=torch.Generator().manual_seed(3)))
