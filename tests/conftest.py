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
