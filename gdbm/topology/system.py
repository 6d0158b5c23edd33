"""An AA topology, its CG topology and the mapping between them, loaded together.

Every command that maps or backmaps needs the same three pieces. A system may hold several
molecule types (a mixture): then it has one mapping file per type (a list, or paths joined by
commas), each given to its type (:func:`~gdbm.topology.mapfiles.load_mappings`), and a CG
topology that lists the molecules: a CG ``.top`` with ``[ molecules ]``, or one CG ``.itp``
per type, put in the order of the AA topology's molecules.

The CG topology is found by convention when not given. One molecule type: ``<molecule>_cg.itp``
or ``<mapping stem>_cg.itp`` beside the mapping or the topology, holding as many molecules as
the AA topology. Several: ``cg.top`` beside the topology (as ``gdbm datagen`` writes it), else
``<molecule>_cg.itp`` of each type beside a mapping or the topology.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gdbm.utils.errors import InputError
from gdbm.topology.gromacs import read_system, read_topology
from gdbm.topology.mapfiles import load_mapping, load_mappings, molecule_types, resolve_mapping
from gdbm.topology.mapping import SystemMapping, expand_mapping
from gdbm.topology.topology import Topology

#: One file or several: a path, paths joined by commas (``"A.yaml,B.map"``), or a sequence of either.
PathList = str | Path | Sequence[str | Path]


@dataclass
class MappedSystem:
    """The AA topology, the CG topology and the expanded mapping of one system."""

    aa: Topology
    cg: Topology
    mapping: SystemMapping
    cg_source: Path  # the CG topology file (several joined by " + ")


def split_paths(files: PathList | None) -> list[Path]:
    """``files`` as a list of paths: one path, a comma-separated string of paths, or a sequence of either.

    A string that names an existing file is one path, commas and all.
    """
    if files is None:
        return []
    items = [files] if isinstance(files, (str, Path)) else list(files)
    out: list[Path] = []
    for item in items:
        if isinstance(item, str) and "," in item and not Path(item).exists():
            out += [Path(p.strip()) for p in item.split(",") if p.strip()]
        else:
            out.append(Path(item))
    return out


def mapping_paths(mapping: PathList) -> list[Path]:
    """The mapping files of ``mapping`` (:func:`split_paths`), each a path or a shipped mapping's name."""
    paths = split_paths(mapping)
    if not paths:
        raise InputError("no mapping file given")
    return [resolve_mapping(p) for p in paths]


def find_cg_itp(mapping: Path, top: Path, molecules: list[str]) -> Path:
    """The CG ``.itp`` by convention: ``<molecule>_cg.itp`` or ``<mapping stem>_cg.itp`` beside mapping or topology."""
    names = [f"{m}_cg.itp" for m in dict.fromkeys(molecules)] + [f"{mapping.stem}_cg.itp"]
    tried = list(dict.fromkeys(folder / name for folder in (mapping.parent, top.parent) for name in names))
    found = [p for p in tried if p.exists()]
    if not found:
        raise InputError(f"no CG topology found (tried {', '.join(str(p) for p in tried)}); pass --cg-itp", mapping)
    return found[0]


def find_cg_files(mappings: list[Path], top: Path, molecules: list[str]) -> list[Path]:
    """The CG topology of a system with several molecule types, by convention: ``cg.top`` beside the
    topology, else ``<molecule>_cg.itp`` of each type beside a mapping or the topology."""
    if (top.parent / "cg.top").is_file():
        return [top.parent / "cg.top"]
    folders = list(dict.fromkeys([*(m.parent for m in mappings), top.parent]))
    found, missing = [], []
    for name in dict.fromkeys(molecules):
        paths = [folder / f"{name}_cg.itp" for folder in folders]
        hit = next((p for p in paths if p.is_file()), None)
        if hit is None:
            missing.append(name)
        else:
            found.append(hit)
    if missing:
        tried = [str(top.parent / "cg.top")] + [str(f / f"{m}_cg.itp") for m in missing for f in folders]
        raise InputError(f"no CG topology found for molecule types {', '.join(missing)} (tried {', '.join(tried)}); "
                         "pass --cg-itp: a CG .top with [ molecules ], or one CG .itp per molecule type "
                         "(comma-separated)", top)
    return found


def read_cg_topology(files: list[Path], aa: Topology) -> tuple[Topology, Path]:
    """The CG topology of the system ``aa`` from ``files``: a ``.top`` (read alone), one ``.itp`` of a
    one-type system (copied for each molecule), or ``.itp`` files defining every molecule type, listed
    in the order of the AA topology's molecules. Also the file (or files, joined) as a path."""
    if len(files) == 1 and files[0].suffix != ".itp":
        return read_topology(files[0], require_parameters=False), files[0]
    if len(files) == 1 and len(molecule_types(aa)) == 1:
        return read_topology(files[0], require_parameters=False, n_molecules=aa.n_molecules), files[0]
    if any(f.suffix != ".itp" for f in files):
        raise InputError("several CG topology files must all be .itp files (one or more molecule types each); "
                         f"got {', '.join(str(f) for f in files)}; or give one CG .top with [ molecules ]")
    runs: list[tuple[str, int]] = []  # the AA molecules as (name, count) runs, in order
    for block in aa.molecules:
        if runs and runs[-1][0] == block.name:
            runs[-1] = (block.name, runs[-1][1] + 1)
        else:
            runs.append((block.name, 1))
    cg = read_system(files, runs, require_parameters=False)
    return cg, Path(cg.source)


def load_mapped_system(top: str | Path, mapping: PathList, cg_itp: PathList | None = None, *,
                       parameters: str | Path | None = None, partial: bool = True) -> MappedSystem:
    """Read the AA topology (with parameters), the CG topology (structure only) and the mapping.

    ``mapping``: one mapping file, or one per molecule type of a mixture (a list, or paths joined
    by commas). ``cg_itp``: the CG topology (a ``.top``, or ``.itp`` files; default by convention,
    see the module's notes). Unless ``partial``, every atom must be mapped.
    """
    top = Path(top)
    aa = read_topology(top, parameters=parameters)
    paths = mapping_paths(mapping)
    names = [m.name for m in aa.molecules]
    one_type = len(molecule_types(aa)) == 1
    files = split_paths(cg_itp)
    if not files:
        files = [find_cg_itp(paths[0], top, names)] if one_type else find_cg_files(paths, top, names)
    cg, cg_path = read_cg_topology(files, aa)
    if one_type and len(paths) == 1:
        mappings = [load_mapping(paths[0], aa, cg, partial=partial)]
    else:
        mappings = load_mappings(paths, aa, cg, partial=partial)
    return MappedSystem(aa, cg, expand_mapping(mappings, aa, cg), cg_path)
