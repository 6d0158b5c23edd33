"""Atomic output: a file appears complete or not at all (temp file in the same folder + rename).

Every writer of gdbm goes through :func:`atomic_path`, which also refuses to replace an
existing file unless asked and gives the result the usual permissions (umask applied;
``mkstemp`` alone would leave it readable by the owner only).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gdbm.utils.errors import InputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output_path(path: str | Path, suffixes: Iterable[str] | None = None) -> Path:
    """``path`` as a file to write, checked before any work: not a folder, no file among its
    parents, a writable folder, and (when given) one of ``suffixes``; else an :class:`InputError`."""
    path = Path(path)
    if suffixes is not None and path.suffix not in set(suffixes):
        raise InputError(f"cannot write {path.suffix or 'a file without suffix'!r}; expected one of "
                         f"{', '.join(sorted(suffixes))}", path)
    if path.is_dir():
        raise InputError("is a folder; expected a file to write", path)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise InputError(f"cannot create {path}: {parent} is a file, not a folder", parent)
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {path}: permission denied", parent)
    return path


def check_output_folder(folder: str | Path) -> Path:
    """``folder`` as a folder to write files into, checked before any work: an existing writable
    folder, or one that can be created (no file among its parents); else an :class:`InputError`."""
    folder = Path(folder)
    if not folder.exists():
        return check_output_path(folder)
    if not folder.is_dir():
        raise InputError("is a file; expected a folder to write into", folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError("cannot write into this folder: permission denied", folder)
    return folder


@contextmanager
def atomic_path(path: str | Path, force: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    With ``force=False`` an existing ``path`` is an :class:`InputError`.
    """
    path = check_output_path(path)
    if path.exists() and not force:
        raise InputError("exists; pass --force to overwrite", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=path.suffix, dir=path.parent, prefix=f".{path.stem}.")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str, force: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path, force) as tmp:
        tmp.write_text(text)
    return Path(path)


@contextmanager
def staged_folder(folder: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``folder``; on success its files move into ``folder``
    (created if needed; files of the same name replaced, others kept), on error it is removed with
    any parent folders it made: a run that fails half-way (a full disk) leaves nothing behind."""
    folder = check_output_folder(folder)
    first_missing = None
    for ancestor in (folder.parent, *folder.parent.parents):
        if ancestor.exists():
            break
        first_missing = ancestor
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        yield tmp
        folder.mkdir(exist_ok=True)
        for item in sorted(tmp.iterdir()):
            os.replace(item, folder / item.name)
    except BaseException:
        if first_missing is not None:
            shutil.rmtree(first_missing, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
