"""One generator call of the shipped ``sps-voxel`` at the sampler's batch size: eager vs ``torch.compile``,
float32 vs bfloat16 autocast.

The sampler's cost is almost all generator calls (voxelisation + 3D convolutions): this times one
call on a batch of ``--batch`` environments (``SamplerConfig.max_batch``) of ``--particles``
particles, random but shaped like sPS environments. ``torch.compile`` is timed after its
compilation (reported apart), with ``dynamic=True`` because the sampler's batches vary in size.

Run: ``python benchmarks/bench_generator.py [--batch 4096] [--threads N] [--device cpu|cuda]`` (JSON lines).
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def inputs(spec, batch: int, particles: int, noise_dim: int, device: str):
    from gdbm.conditioners.interface import Particles

    g = torch.Generator().manual_seed(0)
    positions = (torch.rand(batch, particles, 3, generator=g) - 0.5) * 1.4
    channel = torch.randint(spec.n_features, (batch, particles), generator=g)
    features = torch.nn.functional.one_hot(channel, spec.n_features).float()
    mask = torch.rand(batch, particles, generator=g) < 0.9
    types = torch.nn.functional.one_hot(torch.randint(spec.n_target_types, (batch,), generator=g),
                                        spec.n_target_types).float()
    noise = torch.randn(batch, noise_dim, generator=g)
    return Particles(positions, features, mask).to(device), types.to(device), noise.to(device)


def timed(call, repeats: int, device: str) -> float:
    call()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main(a: argparse.Namespace) -> None:
    from gdbm.training.trained_model import load_generator

    if a.threads:
        torch.set_num_threads(a.threads)
    generator, spec, _ = load_generator(a.checkpoint, a.device)
    particles, types, noise = inputs(spec, a.batch, a.particles, generator.noise_dim, a.device)
    reference = None
    for compiled in (False, True):
        net = torch.compile(generator, dynamic=True) if compiled else generator
        for precision in ("float32", "bfloat16"):
            def call():
                with torch.no_grad(), torch.autocast(a.device, torch.bfloat16, enabled=precision == "bfloat16"):
                    return net(particles, types, noise)

            first = time.perf_counter()
            out = call()
            compile_s = time.perf_counter() - first if compiled else 0.0
            seconds = timed(call, a.repeats, a.device)
            reference = out if reference is None else reference
            print(json.dumps({"compiled": compiled, "precision": precision, "batch": a.batch,
                              "threads": torch.get_num_threads(), "device": a.device,
                              "ms_per_call": round(1000 * seconds, 1),
                              "environments_per_s": round(a.batch / seconds),
                              "first_call_s": round(compile_s, 1),
                              "max_position_change_nm": float((out.float() - reference).abs().max())}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="generator call: eager vs compiled, float32 vs bfloat16")
    parser.add_argument("--checkpoint", default="sps-voxel")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--particles", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--device", default="cpu")
    main(parser.parse_args())
