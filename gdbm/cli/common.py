"""Argument helpers shared by several subcommands."""

from __future__ import annotations

from gdbm.utils.errors import InputError


def parse_named_sets(specs: list[str]) -> dict[str, str]:
    """``["NAME=TRAJ", ...]`` (``--gen``) -> ``{NAME: TRAJ}``; a clear error for a bad or repeated name."""
    sets: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--gen expects NAME=TRAJ, got {spec!r}")
        if name in sets:
            raise InputError(f"--gen name {name!r} given twice")
        sets[name] = path
    return sets
