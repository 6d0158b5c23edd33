"""Shared fixtures: the published reference data lives beside the checkout in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

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
