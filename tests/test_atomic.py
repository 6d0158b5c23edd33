"""Atomic output: complete or absent, never overwritten by accident, readable like any file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gdbm.utils.atomic_files import atomic_path, write_text
from gdbm.utils.errors import InputError


def test_failure_leaves_the_old_file_and_no_temp(tmp_path: Path):
    target = write_text(tmp_path / "out.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_no_overwrite_without_force_and_normal_permissions(tmp_path: Path):
    target = write_text(tmp_path / "a.json", "{}")
    with pytest.raises(InputError, match="--force"):
        write_text(target, "{}", force=False)
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
