"""Shared fixtures: the published reference data lives beside the checkout in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gdbm.data import read_frames, write_frames
from gdbm.data.trajectory import Frames

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the DBM authors' published data (read-only, never copied into the repo)."""
    assert SHARED_DATA.is_dir(), f"reference data not found at {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(scope="session")
def sps(shared_data: Path) -> Path:
    return shared_data / "sps"


N_CHAINS = 2


@pytest.fixture(scope="session")
def two_chains(tmp_path_factory, sps: Path):
    """The sPS force field with two chains, and the first CG frame cut down to their 40 beads."""
    folder = tmp_path_factory.mktemp("two_chains")
    top = (sps / "topol.top").read_text().replace('#include "topol_PS1.itp"', f'#include "{sps / "topol_PS1.itp"}"')
    top = top.replace("PS1       36", f"PS1       {N_CHAINS}")
    (folder / "topol.top").write_text(top)
    (folder / "PS1_cg.itp").write_text((sps / "PS1_cg.itp").read_text())
    (folder / "PS1.map").write_text((sps / "PS1.map").read_text())
    (folder / "PS1_cg_fritz.map").write_text((sps / "PS1_cg_fritz.map").read_text())
    full = read_frames(sps / "train_t568" / "cg" / "90.gro")
    n = 20 * N_CHAINS
    cg = Frames(full.positions[:, :n], full.boxes, full.labels, full.names[:n], full.resnames[:n], full.resids[:n])
    aa_full = read_frames(sps / "train_t568" / "aa" / "90.gro")
    m = 162 * N_CHAINS
    aa = Frames(aa_full.positions[:, :m], aa_full.boxes, aa_full.labels, aa_full.names[:m], aa_full.resnames[:m],
                aa_full.resids[:m])
    write_frames(folder / "cg.gro", cg)
    write_frames(folder / "aa.gro", aa)
    (folder / "tiny.yaml").write_text("data:\n  topology: topol.top\n  mapping: PS1.map\n  aa: aa.gro\n  cg: cg.gro\n"
                                      "  cg_map: PS1_cg_fritz.map\n"
                                      "model:\n  voxel: {resolution: 4, channels: 4, noise_dim: 4, n_blocks: 1}\n"
                                      "training: {batch_size: 2, n_critic: 1, steps: 1, threads: 1}\n")
    return folder


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One intra-op thread: on a busy 2-core machine, two OpenMP threads spin against other
    processes and small ops slow down by orders of magnitude (measured: 97 s vs 0.8 s for the
    same backmapping); results are also bit-for-bit repeatable this way."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config, items) -> None:
    """The long fuzzing runs (slow twins in test_fuzz_inputs) are deselected, not skipped, unless
    ``-m slow`` or ``GDBM_FUZZ_SLOW=1`` asks for them."""
    expr = config.option.markexpr or ""
    if os.environ.get("GDBM_FUZZ_SLOW") or ("slow" in expr and "not slow" not in expr):
        return
    long_fuzz = [i for i in items if i.get_closest_marker("slow") and i.module.__name__.endswith("test_fuzz_inputs")]
    if long_fuzz:
        config.hook.pytest_deselected(items=long_fuzz)
        items[:] = [i for i in items if i not in long_fuzz]
