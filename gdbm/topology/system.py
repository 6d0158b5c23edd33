"""An AA topology, its CG topology and the mapping between them, loaded together.

Every command that maps or backmaps needs the same three pieces; the CG ``.itp`` is found by
convention when not given (``<molecule>_cg.itp`` or ``<mapping stem>_cg.itp`` beside the
mapping or the topology), and holds as many molecules as the AA topology.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gdbm.utils.errors import InputError
from gdbm.topology.gromacs import read_topology
from gdbm.topology.mapfiles import load_mapping, resolve_mapping
from gdbm.topology.mapping import SystemMapping, expand_mapping
from gdbm.topology.topology import Topology


@dataclass
class MappedSystem:
    """The AA topology, the CG topology and the expanded mapping of one system."""

    aa: Topology
    cg: Topology
    mapping: SystemMapping
    cg_source: Path


def find_cg_itp(mapping: Path, top: Path, molecules: list[str]) -> Path:
    """The CG ``.itp`` by convention: ``<molecule>_cg.itp`` or ``<mapping stem>_cg.itp`` beside mapping or topology."""
    names = [f"{m}_cg.itp" for m in dict.fromkeys(molecules)] + [f"{mapping.stem}_cg.itp"]
    tried = list(dict.fromkeys(folder / name for folder in (mapping.parent, top.parent) for name in names))
    found = [p for p in tried if p.exists()]
    if not found:
        raise InputError(f"no CG topology found (tried {', '.join(str(p) for p in tried)}); pass --cg-itp", mapping)
    return found[0]


def load_mapped_system(top: str | Path, mapping: str | Path, cg_itp: str | Path | None = None, *,
                       parameters: str | Path | None = None, partial: bool = True) -> MappedSystem:
    """Read the AA topology (with parameters), the CG topology (structure only) and the mapping."""
    top = Path(top)
    aa = read_topology(top, parameters=parameters)
    map_path = resolve_mapping(mapping)
    cg_path = Path(cg_itp) if cg_itp else find_cg_itp(map_path, top, [m.name for m in aa.molecules])
    cg = read_topology(cg_path, require_parameters=False,
                       n_molecules=aa.n_molecules if cg_path.suffix == ".itp" else None)
    system_mapping = expand_mapping(load_mapping(map_path, aa, cg, partial=partial), aa, cg)
    return MappedSystem(aa, cg, system_mapping, cg_path)
