"""Run under torchrun by tests/test_distributed.py: two adversarial updates with DDP, then every
rank's parameters gathered on rank 0 and compared. Arguments: CONFIG.yaml OUT_DIR RESULT.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from gdbm.utils.distributed import from_environment
from gdbm.training.trainer import build_trainer
from gdbm.training.config import load_config


def flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def main(config_path: str, out: str, result: str) -> None:
    distributed = from_environment("cpu")
    trainer = build_trainer(load_config(config_path), out, distributed)
    before = flat(trainer.state.generator), flat(trainer.state.critic)
    trainer.fit(progress=False)
    after = flat(trainer.state.generator), flat(trainer.state.critic)
    report = {}
    for name, start, end in zip(("generator", "critic"), before, after):
        gathered = [torch.empty_like(end) for _ in range(distributed.world_size)]
        dist.all_gather(gathered, end)
        report[name] = {"max_rank_difference": max(float((g - end).abs().max()) for g in gathered),
                        "change": float((end - start).abs().max())}
    # numbers that only some ranks report (a rank's batch may lack an energy term)
    report["mean"] = distributed.mean({"shared": float(distributed.rank), f"only{distributed.rank}": 1.0})
    if distributed.is_main:
        Path(result).write_text(json.dumps({"world_size": distributed.world_size, "step": trainer.state.step,
                                            **report}))
    trainer.release()
    distributed.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
