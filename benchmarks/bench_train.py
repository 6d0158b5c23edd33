"""Training throughput and peak memory of an sPS model (``configs/sps.yaml``: voxel, 13 frames; ``--config``).

A fresh process builds the dataset and networks from the config, runs one warm-up iteration,
then times ``ITERATIONS`` adversarial iterations (each ``n_critic`` critic updates + one generator
update on batches of ``batch_size`` sequences; the supervised warm-up is skipped). Training samples per second counts every sequence a
network was trained on: ``(n_critic + 1) * batch_size`` per iteration. Peak memory is the
process's maximum resident set size, dataset included. The original DBM code on this machine:
about 210 s per iteration (4 + 1 updates, batch 64: 1.5 samples/s) and over 20.9 GB.

Run: ``python benchmarks/bench_train.py [--threads N] [--config configs/sps_e3nn.yaml]`` (prints JSON), or through pytest-benchmark:
``python -m pytest benchmarks/bench_train.py --benchmark-only``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "sps.yaml"
ITERATIONS = 3
DBM_SAMPLES_PER_S = 5 * 64 / 210


def measure(threads: int | None, config_path: Path = CONFIG) -> dict:
    import torch

    from gdbm.training.trainer import build_trainer
    from gdbm.training.config import load_config

    if threads:
        torch.set_num_threads(threads)
    config = load_config(config_path)
    t = config.training
    start = time.perf_counter()
    trainer = build_trainer(config, Path("/tmp") / "gdbm_bench_train")
    build = time.perf_counter() - start
    trainer.state.step = t.pretrain_steps  # time adversarial iterations, not the supervised warm-up
    trainer.train_step()  # warm-up
    start = time.perf_counter()
    for _ in range(ITERATIONS):
        trainer.train_step()
    per_iteration = (time.perf_counter() - start) / ITERATIONS
    samples = (t.n_critic + 1) * t.batch_size / per_iteration
    n_params = sum(p.numel() for m in (trainer.state.generator, trainer.state.critic) for p in m.parameters())
    return {"encoder": config.model.encoder, "parameters": n_params, "threads": torch.get_num_threads(), "dataset_samples": len(trainer.dataset), "build_s": round(build, 2),
            "seconds_per_iteration": round(per_iteration, 2), "samples_per_s": round(samples, 1),
            "vs_dbm": round(samples / DBM_SAMPLES_PER_S, 1),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}


def test_training_throughput(benchmark):
    def run() -> dict:
        out = subprocess.run([sys.executable, __file__], check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(result)
    assert result["samples_per_s"] > 0 and result["peak_rss_gb"] > 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="sPS training throughput and peak memory")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--config", type=Path, default=CONFIG, help="experiment config (default configs/sps.yaml)")
    args = parser.parse_args()
    print(json.dumps(measure(args.threads, args.config)))
