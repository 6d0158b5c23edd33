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


def test_staged_folder_moves_all_files_or_leaves_nothing(tmp_path):
    import errno

    from gdbm.utils.atomic_files import staged_folder

    target = tmp_path / "new" / "deeper" / "eval"
    with pytest.raises(OSError):
        with staged_folder(target) as staged:
            (staged / "metrics.json").write_text("{}")
            raise OSError(errno.ENOSPC, "No space left on device")  # the disk fills while plotting
    assert list(tmp_path.iterdir()) == []  # neither the files nor the folders made for them

    existing = tmp_path / "old"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    (existing / "summary.md").write_text("stale")
    with staged_folder(existing) as staged:
        (staged / "summary.md").write_text("fresh")
        (staged / "metrics.json").write_text("{}")
    assert sorted(p.name for p in existing.iterdir()) == ["metrics.json", "notes.txt", "summary.md"]
    assert (existing / "summary.md").read_text() == "fresh" and (existing / "notes.txt").read_text() == "mine"


def test_staged_folder_refuses_a_file_before_any_work(tmp_path):
    from gdbm.utils.atomic_files import check_output_folder
    from gdbm.utils.errors import InputError

    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file; expected a folder"):
        check_output_folder(tmp_path / "f")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "f" / "eval")
