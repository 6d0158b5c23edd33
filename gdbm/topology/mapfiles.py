"""Mapping files: DBM's ``.map`` format and gdbm's native YAML format, read and written.

DBM ``.map`` (one molecule type; ``;`` starts a comment; ``[/name]`` lines close sections)::

    [map]
    ; atom_index ff_type bead_index bead_name [weight]
    1 H 1 BB            ; weight defaults to 1.0
    4 H 3 BB 0.5        ; an atom may be listed for several beads
    [align]
    ; bead fixpoint_bead
    1 3
    [mult]
    ; bead multiplicity
    1 4

Indices are 1-based. An atom's home bead (the bead it is reconstructed with) is the bead
with its largest weight, the first listed among ties; its ``ff_type`` is the type of DBM's
energy prior (kept as ``prior_types``). Bead names, bead types and CG bonds are not in the
file: they come from the CG topology. Beads missing from ``[mult]`` get multiplicity 1,
from ``[align]`` no fixpoint. The centre (``com``/``cog``) is not in the file either.

Native YAML (``.yaml``/``.yml``; self-contained; 1-based indices; spec in
``docs/mapping_format.md``)::

    version: 1
    molecule: PS1             # molecule type name, as in the topologies
    n_atoms: 162
    center: com               # com: weight x mass; cog: weight only
    beads:                    # in CG topology order
      - {name: A1, type: A1r, label: BB, align: 3, mult: 4}
    cg_bonds: [[1, 2], [2, 3]]
    atoms:                    # atoms left out have no home bead (partial mappings only)
      - {index: 4, prior_type: H, home: 3, beads: {3: 0.5, 5: 0.5}}

``home`` must be one of the atom's ``beads`` (use weight 0 for a home bead that does not
contribute to the bead position).
"""

from __future__ import annotations

import math

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gdbm.utils.atomic_files import write_text
from gdbm.utils.config_files import load_yaml, read_text
from gdbm.utils.errors import InputError
from gdbm.topology.elements import UNKNOWN, symbol_from_number
from gdbm.topology.mapping import MoleculeMapping, block_bonds, molecule_block
from gdbm.topology.topology import MoleculeBlock, Topology

SHIPPED = Path(__file__).resolve().parents[1] / "resources" / "mappings"
_MAP_SECTIONS = ("map", "align", "mult")
_MAP_LINE = "'atom_index ff_type bead_index bead_name [weight]' (integers >= 1, weight >= 0)"


# ---------------------------------------------------------------------------- .map reading


@dataclass
class _MapEntry:
    atom: int  # 0-based
    prior_type: str
    bead: int  # 0-based
    label: str
    weight: float
    line: int
    weighted: bool = True  # the line gives the weight (5th column)


@dataclass
class _ParsedMap:
    path: Path
    entries: list[_MapEntry] = field(default_factory=list)
    align: dict[int, tuple[int, int]] = field(default_factory=dict)  # bead -> (fixpoint, line), 0-based
    mult: dict[int, tuple[int, int]] = field(default_factory=dict)  # bead -> (multiplicity, line)


def _positive_int(token: str) -> int:
    value = int(token)
    if value < 1:
        raise ValueError(token)
    return value


@dataclass
class _Sections:
    """Which ``.map`` section is open, and whether the file closes its sections with ``[/name]`` lines."""

    path: Path
    open: str | None = None
    opened_on: int = 0
    closes: bool = False  # some section of the file has a [/name] closer

    def header(self, closing: str, name: str, number: int) -> None:
        if name not in _MAP_SECTIONS:
            raise InputError(f"unknown section [{name}]; expected one of "
                             f"{', '.join(f'[{s}]' for s in _MAP_SECTIONS)}", self.path, number)
        if closing:
            if self.open != name:
                found = f"[{self.open}] (opened on line {self.opened_on})" if self.open else "no open section"
                raise InputError(f"[/{name}] closes a section that is not open; found {found}", self.path, number)
            self.open = None
            return
        if self.open is not None and self.closes:
            self.unclosed(number, f"before [{name}] opens")
        self.open, self.opened_on = name, number

    def unclosed(self, number: int, where: str) -> None:
        raise InputError(f"[{self.open}] opened on line {self.opened_on} is not closed by [/{self.open}] {where}; "
                         "expected every section closed, as the file's other sections are", self.path, number)


def _parse_map(path: Path) -> _ParsedMap:
    """Tokenise a ``.map`` file, checking each line's shape; indices become 0-based.

    Closing lines (``[/map]``) are optional, but a file that closes some sections must close each one
    before the next opens: a missing ``[/map]`` there is a damaged file, not a style.
    """
    parsed = _ParsedMap(path)
    lines = read_text(path).splitlines()
    sections = _Sections(path, closes=any(re.fullmatch(r"\[\s*/\s*\w+\s*\]", _uncommented(raw)) for raw in lines))
    for number, raw in enumerate(lines, start=1):
        text = _uncommented(raw)
        if not text:
            continue
        header = re.fullmatch(r"\[\s*(/?)\s*(\w+)\s*\]", text)
        if header:
            sections.header(*header.groups(), number)
            continue
        _parse_map_line(parsed, sections.open, raw, number)
    if sections.open == "map" and sections.closes:
        sections.unclosed(len(lines), "at the end of the file")
    if not parsed.entries:
        raise InputError("no [map] entries; expected a [map] section with 'atom_index ff_type bead_index "
                         "bead_name [weight]' lines", path)
    return parsed


def _uncommented(raw: str) -> str:
    return raw.split(";", 1)[0].strip()


def _parse_map_line(parsed: _ParsedMap, section: str | None, raw: str, number: int) -> None:
    """One data line of section ``section`` into ``parsed``."""
    path, fields = parsed.path, _uncommented(raw).split()
    try:
        if section == "map":
            parsed.entries.append(_map_entry(fields, number))
        elif section in ("align", "mult"):
            if len(fields) != 2:
                raise ValueError
            bead, value = _positive_int(fields[0]) - 1, _positive_int(fields[1])
            table = getattr(parsed, section)
            if bead in table:
                raise InputError(f"bead {bead + 1} is listed twice in [{section}] (first on line "
                                 f"{table[bead][1]})", path, number)
            table[bead] = (value - 1 if section == "align" else value, number)
        else:
            raise InputError(f"a line outside any section; expected a section header such as [map]: {raw!r}",
                             path, number)
    except InputError:
        raise
    except ValueError:
        expected = _MAP_LINE if section == "map" else (
            "'bead fixpoint_bead' (integers >= 1)" if section == "align" else "'bead multiplicity' (integers >= 1)")
        raise InputError(f"expected {expected} in [{section}], got {raw.strip()!r}", path, number) from None


def _map_entry(fields: list[str], number: int) -> _MapEntry:
    """A ``[map]`` line's fields; ``ValueError`` when they do not fit."""
    if len(fields) not in (4, 5):
        raise ValueError
    weight = float(fields[4]) if len(fields) == 5 else 1.0
    if not weight >= 0 or weight == float("inf"):
        raise ValueError
    return _MapEntry(_positive_int(fields[0]) - 1, fields[1], _positive_int(fields[2]) - 1, fields[3], weight,
                     number, weighted=len(fields) == 5)


_ELEMENT_PREFIX = re.compile(r"([A-Z][a-z]?)(?:[_\d]|$)")


@lru_cache(maxsize=1)
def _element_symbols() -> frozenset[str]:
    return frozenset(symbol_from_number(z) for z in range(1, 119))


class _MeaningChecks:
    """What a ``.map`` line must agree with beyond its shape: the AA atom's element (ff_type), the other beads
    of its CG type (bead name) and the atom's other lines (weights of a shared atom)."""

    def __init__(self, path: Path, aa: Topology, aa_block: MoleculeBlock, cg: Topology, cg_block: MoleculeBlock):
        self.path, self.aa, self.aa_block, self.cg, self.cg_block = path, aa, aa_block, cg, cg_block
        self.type_elements: dict[str, str] = {}
        for t, el in zip(aa.types[aa_block.start:aa_block.stop], aa.elements[aa_block.start:aa_block.stop]):
            self.type_elements.setdefault(t, el)
        self.ff_elements: dict[str, tuple[str, int]] = {}  # ff_type -> (element, line)
        self.labels: dict[str, tuple[str, int, int]] = {}  # CG bead type -> (label, bead, line)
        self.lines: dict[int, list[_MapEntry]] = {}  # atom -> its entries

    def entry(self, e: _MapEntry) -> None:
        self._ff_type(e)
        self._label(e)
        self._shared(e)

    def finish(self, entries: list[_MapEntry]) -> None:
        """A map written in the AA topology's type names (all but a stray line or two) must use them throughout."""
        strays = [e for e in entries if e.prior_type not in self.type_elements]
        known = {e.prior_type for e in entries} & set(self.type_elements)
        if strays and len(known) >= 2 and len(strays) <= 0.05 * len(entries):
            e = strays[0]
            raise InputError(f"ff_type {e.prior_type!r} of atom {e.atom + 1} is not an atom type of "
                             f"{self.aa.source or '<AA topology>'}, whose type names the other lines of this map use; "
                             f"expected one of {', '.join(sorted(known))}", self.path, e.line)

    def _atom(self, e: _MapEntry) -> str:
        k = self.aa_block.start + e.atom
        return f"atom {e.atom + 1} ({self.aa.names[k]}, type {self.aa.types[k]}, element {self.aa.elements[k]})"

    def _ff_type(self, e: _MapEntry) -> None:
        element = self.aa.elements[self.aa_block.start + e.atom]
        if element == UNKNOWN:
            return
        source = self.aa.source or "<AA topology>"
        expected, why = self.type_elements.get(e.prior_type), f"the type of {{}} atoms in {source}"
        if expected is None:
            prefix = _ELEMENT_PREFIX.match(e.prior_type)
            if prefix and prefix.group(1) in _element_symbols():
                expected, why = prefix.group(1), "named for element {}"
        if expected is None:
            expected, first = self.ff_elements.get(e.prior_type, (element, e.line))
            why = f"given to {{}} atoms on line {first}"
        if expected not in (element, UNKNOWN):
            raise InputError(f"ff_type {e.prior_type!r} is {why.format(expected)}, but {self._atom(e)} is not; "
                             "expected an ff_type of its element in the 2nd column", self.path, e.line)
        self.ff_elements.setdefault(e.prior_type, (element, e.line))

    def _label(self, e: _MapEntry) -> None:
        k = self.cg_block.start + e.bead
        bead_type = self.cg.types[k]
        label, bead, line = self.labels.setdefault(bead_type, (e.label, e.bead, e.line))
        if label != e.label:
            raise InputError(f"bead {e.bead + 1} ({self.cg.names[k]}, type {bead_type}) is named {e.label!r}, but "
                             f"bead {bead + 1} of the same type is {label!r} (line {line}); expected one bead name "
                             "per CG bead type", self.path, e.line)

    def _shared(self, e: _MapEntry) -> None:
        others = self.lines.setdefault(e.atom, [])
        others.append(e)
        if len(others) > 1 and not all(o.weighted for o in others):
            beads = ", ".join(str(o.bead + 1) for o in others)
            raise InputError(f"atom {e.atom + 1} is listed for beads {beads} (lines "
                             f"{', '.join(str(o.line) for o in others)}) without a weight on each line; expected an "
                             "atom once, or a weight column (e.g. 0.5) on every line of an atom shared by beads",
                             self.path, e.line)


def _from_parsed_map(parsed: _ParsedMap, aa: Topology, cg: Topology, molecule: str | None,
                     center: str) -> MoleculeMapping:
    """Build a :class:`MoleculeMapping` from a parsed ``.map`` and the two topologies."""
    path = parsed.path
    cg_block = molecule_block(cg, molecule)
    aa_block = molecule_block(aa, cg_block.name)
    n_atoms, n_beads = aa_block.n_atoms, cg_block.n_atoms
    seen: dict[tuple[int, int], int] = {}
    labels: dict[int, str] = {}
    prior_types = [""] * n_atoms
    home = torch.full((n_atoms,), -1, dtype=torch.long)
    home_weight = [-1.0] * n_atoms
    checks = _MeaningChecks(path, aa, aa_block, cg, cg_block)
    for e in parsed.entries:
        if e.atom >= n_atoms:
            raise InputError(f"atom {e.atom + 1}, but molecule {aa_block.name!r} has {n_atoms} atoms in "
                             f"{aa.source or '<AA topology>'}", path, e.line)
        if e.bead >= n_beads:
            raise InputError(f"bead {e.bead + 1}, but molecule {cg_block.name!r} has {n_beads} beads in the CG "
                             f"topology {cg.source or '<CG topology>'}", path, e.line)
        if (e.atom, e.bead) in seen:
            raise InputError(f"atom {e.atom + 1} is listed twice for bead {e.bead + 1} (first on line "
                             f"{seen[e.atom, e.bead]})", path, e.line)
        seen[e.atom, e.bead] = e.line
        if labels.setdefault(e.bead, e.label) != e.label:
            raise InputError(f"bead {e.bead + 1} is named {e.label!r} here but {labels[e.bead]!r} on an earlier "
                             "line", path, e.line)
        if prior_types[e.atom] and prior_types[e.atom] != e.prior_type:
            raise InputError(f"atom {e.atom + 1} has ff_type {e.prior_type!r} here but {prior_types[e.atom]!r} on "
                             "an earlier line", path, e.line)
        prior_types[e.atom] = e.prior_type
        checks.entry(e)
        if e.weight > home_weight[e.atom]:  # strictly larger: the first listed wins ties
            home[e.atom], home_weight[e.atom] = e.bead, e.weight
    checks.finish(parsed.entries)
    for section in ("align", "mult"):
        for bead, (value, line) in getattr(parsed, section).items():
            if bead >= n_beads or (section == "align" and value >= n_beads):
                raise InputError(f"[{section}] names a bead beyond the {n_beads} beads of {cg_block.name!r} in "
                                 f"{cg.source or '<CG topology>'}", path, line)
    align = torch.full((n_beads,), -1, dtype=torch.long)
    mult = torch.ones(n_beads, dtype=torch.long)
    for bead, (value, _) in parsed.align.items():
        align[bead] = value
    for bead, (value, _) in parsed.mult.items():
        mult[bead] = value
    try:
        return MoleculeMapping(
            molecule=cg_block.name, n_atoms=n_atoms,
            bead_names=cg.names[cg_block.start:cg_block.stop], bead_types=cg.types[cg_block.start:cg_block.stop],
            bead_labels=[labels.get(b, "") for b in range(n_beads)], cg_bonds=block_bonds(cg, cg_block),
            membership=torch.tensor([[e.atom, e.bead] for e in parsed.entries], dtype=torch.long),
            weights=torch.tensor([e.weight for e in parsed.entries], dtype=torch.float64),
            home_bead=home, prior_types=prior_types, align=align, mult=mult, center=center, source=str(path))
    except ValueError as err:
        raise InputError(str(err), path) from None


# ---------------------------------------------------------------------------- YAML reading


class _Bead(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    type: str
    label: str = ""
    align: int | None = Field(None, ge=1)
    mult: int = Field(1, ge=1)


class _Atom(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: int = Field(ge=1)
    prior_type: str = ""
    home: int = Field(ge=1)
    beads: dict[int, float] = Field(min_length=1)


class _MappingSpec(BaseModel):
    """Validated content of a native YAML mapping file."""

    model_config = ConfigDict(extra="forbid")
    version: Literal[1]
    molecule: str
    n_atoms: int = Field(ge=1)
    center: Literal["com", "cog"] = "com"
    beads: list[_Bead] = Field(min_length=1)
    cg_bonds: list[tuple[int, int]] = []
    atoms: list[_Atom]


def _yaml_line(node: yaml.Node | None, loc: tuple) -> int | None:
    """The 1-based line of the YAML node at pydantic location ``loc`` (deepest node found)."""
    line = None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        elif isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(key)), None)
        else:
            node = None
    return node.start_mark.line + 1 if node is not None else line


def _read_yaml(path: Path) -> MoleculeMapping:
    text = read_text(path)
    data = load_yaml(path, text)
    try:
        spec = _MappingSpec.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(k) for k in first["loc"])
        raise InputError(f"{where}: {first['msg']}", path, _yaml_line(yaml.compose(text), first["loc"])) from None
    return _from_spec(spec, path, text)


def _from_spec(spec: _MappingSpec, path: Path, text: str) -> MoleculeMapping:
    n_beads = len(spec.beads)

    def check(ok: bool, message: str, loc: tuple) -> None:
        if not ok:
            raise InputError(message, path, _yaml_line(yaml.compose(text), loc))

    home = torch.full((spec.n_atoms,), -1, dtype=torch.long)
    prior_types = [""] * spec.n_atoms
    rows, weights = [], []
    for k, atom in enumerate(spec.atoms):
        a = atom.index - 1
        check(a < spec.n_atoms, f"atom {atom.index} but n_atoms is {spec.n_atoms}", ("atoms", k, "index"))
        check(home[a] < 0, f"atom {atom.index} is listed twice", ("atoms", k, "index"))
        check(all(1 <= b <= n_beads for b in atom.beads), f"atom {atom.index}: bead index beyond the {n_beads} "
              "beads", ("atoms", k, "beads"))
        check(atom.home in atom.beads, f"atom {atom.index}: home bead {atom.home} is not one of its beads "
              f"{sorted(atom.beads)}", ("atoms", k, "home"))
        bad = [w for w in atom.beads.values() if not 0 <= w < math.inf]
        check(not bad, f"atom {atom.index}: weight {bad[0] if bad else ''} is not a finite number >= 0",
              ("atoms", k, "beads"))
        home[a], prior_types[a] = atom.home - 1, atom.prior_type
        rows += [[a, b - 1] for b in atom.beads]
        weights += list(atom.beads.values())
    for k, bond in enumerate(spec.cg_bonds):
        check(all(1 <= b <= n_beads for b in bond) and bond[0] != bond[1], f"cg bond {list(bond)} needs two "
              f"different beads in 1..{n_beads}", ("cg_bonds", k))
    for k, bead in enumerate(spec.beads):
        check(bead.align is None or bead.align <= n_beads, f"align {bead.align} beyond the {n_beads} beads",
              ("beads", k, "align"))
    bonds = torch.tensor(spec.cg_bonds, dtype=torch.long).view(-1, 2) - 1
    try:
        return MoleculeMapping(
            molecule=spec.molecule, n_atoms=spec.n_atoms,
            bead_names=[b.name for b in spec.beads], bead_types=[b.type for b in spec.beads],
            bead_labels=[b.label for b in spec.beads], cg_bonds=torch.sort(bonds, dim=1).values,
            membership=torch.tensor(rows, dtype=torch.long).view(-1, 2),
            weights=torch.tensor(weights, dtype=torch.float64), home_bead=home, prior_types=prior_types,
            align=torch.tensor([-1 if b.align is None else b.align - 1 for b in spec.beads], dtype=torch.long),
            mult=torch.tensor([b.mult for b in spec.beads], dtype=torch.long), center=spec.center, source=str(path))
    except ValueError as err:
        raise InputError(str(err), path) from None


# ---------------------------------------------------------------------------- public reading


def resolve_mapping(path: str | Path) -> Path:
    """A path to a mapping file, or the name of one shipped with gdbm (``L49C_cg.map``)."""
    path = Path(path)
    if path.exists():
        return path
    if (SHIPPED / path.name).exists():
        return SHIPPED / path.name
    raise InputError("no such mapping file (nor a shipped mapping of that name)", path)


def load_mapping(path: str | Path, aa: Topology | None = None, cg: Topology | None = None, *,
                 molecule: str | None = None, center: str | None = None, partial: bool = False) -> MoleculeMapping:
    """Read a ``.map`` or YAML mapping of one molecule type.

    A ``.map`` needs the AA topology (atom count) and the CG topology (bead names, types and
    bonds) holding the molecule (``molecule``, default the CG topology's first). YAML files
    are self-contained. ``center`` (``com``/``cog``) overrides the file's (YAML) or the
    default ``com`` (``.map``, which does not say). Unless ``partial``, every atom must be
    mapped; a partial mapping (e.g. one only for computing CG positions) may leave atoms out.
    """
    path = resolve_mapping(path)
    if path.suffix == ".map":
        if aa is None or cg is None:
            raise InputError("a .map file needs the AA and CG topologies of its molecule", path)
        mapping = _from_parsed_map(_parse_map(path), aa, cg, molecule, center or "com")
    elif path.suffix in (".yaml", ".yml"):
        mapping = _read_yaml(path)
        if center is not None:
            mapping = replace(mapping, center=center)
    else:
        raise InputError(f"unknown mapping format {path.suffix!r}; expected .map, .yaml or .yml", path)
    if not partial and not mapping.is_complete:
        missing = (torch.nonzero(mapping.home_bead < 0).flatten() + 1).tolist()
        raise InputError(f"atoms {_ranges(missing)} of {mapping.molecule!r} are never mapped; every atom needs a "
                         "bead (or read it as a partial mapping)", path)
    return mapping


def molecule_types(top: Topology) -> dict[str, MoleculeBlock]:
    """Each molecule type of ``top`` by name, with its first instance, in order of first appearance."""
    types: dict[str, MoleculeBlock] = {}
    for block in top.molecules:
        types.setdefault(block.name, block)
    return types


def load_mappings(paths: list[str | Path], aa: Topology, cg: Topology, *,
                  partial: bool = False) -> list[MoleculeMapping]:
    """The mappings of a system with one or several molecule types, one file per type, each given to its type.

    A YAML file names its molecule (``molecule:``). A ``.map`` does not: it goes to the molecule type
    of ``aa`` whose name is the file's stem (``L49C.map``) or begins it before ``_``, ``-`` or ``.``
    (``L49C_cg.map``), else to the one type not yet given a mapping whose atom count (AA) and bead count
    (CG) its highest atom and bead index reach (fit within, for a ``partial`` mapping). Raises
    :class:`InputError` when a ``.map`` fits several types or none, when two files are for one type, or
    when a file's type is not in the system.
    """
    types, cg_types = molecule_types(aa), molecule_types(cg)
    given: dict[str, Path] = {}
    out: list[MoleculeMapping] = []

    def claim(name: str, path: Path) -> None:
        if name not in types:
            raise InputError(f"is the mapping of molecule {name!r}, which {aa.source or '<AA topology>'} does not "
                             f"hold (its molecule types: {', '.join(types)})", path)
        if name in given:
            raise InputError(f"a second mapping for molecule {name!r} (the first: {given[name]}); expected one "
                             "mapping file per molecule type", path)
        given[name] = path

    maps: list[Path] = []
    for path in (resolve_mapping(p) for p in paths):
        if path.suffix == ".map":
            maps.append(path)
            continue
        mapping = load_mapping(path, partial=partial)
        claim(mapping.molecule, path)
        out.append(mapping)
    named = {path: _type_by_name(path, types) for path in maps}
    for path, name in named.items():
        if name is not None:
            claim(name, path)
    for path in (p for p, name in named.items() if name is None):
        named[path] = _type_by_size(path, types, cg_types, set(given), partial)
        claim(named[path], path)
    return out + [load_mapping(path, aa, cg, molecule=named[path], partial=partial) for path in maps]


def _type_by_name(path: Path, types: dict[str, MoleculeBlock]) -> str | None:
    """The molecule type a ``.map`` file's stem names (``L49C.map``, ``L49C_cg.map``), or None."""
    if path.stem in types:
        return path.stem
    prefixes = [t for t in types if re.match(re.escape(t) + r"[_\-.]", path.stem)]
    return max(prefixes, key=len) if prefixes else None


def _type_by_size(path: Path, types: dict[str, MoleculeBlock], cg_types: dict[str, MoleculeBlock], taken: set[str],
                  partial: bool) -> str:
    """The one molecule type not in ``taken`` whose atom and bead counts a ``.map`` file's indices reach."""
    parsed = _parse_map(path)
    n_atoms = max(e.atom for e in parsed.entries) + 1
    n_beads = max(e.bead for e in parsed.entries) + 1
    free = [t for t in types if t not in taken and t in cg_types]

    def fits(t: str, exact: bool) -> bool:
        a, b = types[t].n_atoms, cg_types[t].n_atoms
        return (a, b) == (n_atoms, n_beads) if exact else (n_atoms <= a and n_beads <= b)

    def fitting(among: list[str]) -> list[str]:
        return [t for t in among if fits(t, True)] or ([t for t in among if fits(t, False)] if partial else [])

    found = fitting(free)
    taken_fit = fitting([t for t in types if t in taken and t in cg_types])
    if not found and len(taken_fit) == 1:
        return taken_fit[0]  # a second file for a type that has one: the caller says so
    sizes = ", ".join(f"{t} ({types[t].n_atoms} atoms, {cg_types[t].n_atoms} beads)" if t in cg_types else t
                      for t in types)
    if not found:
        raise InputError(f"its name names no molecule type and its {n_atoms} atoms and {n_beads} beads fit none "
                         f"without a mapping (molecule types: {sizes}); name the file after its molecule type "
                         "(e.g. NAME.map) or write it as YAML (molecule: NAME)", path)
    if len(found) > 1:
        raise InputError(f"its name names no molecule type and its {n_atoms} atoms and {n_beads} beads fit "
                         f"several: {', '.join(found)}; name the file after its molecule type (e.g. "
                         f"{found[0]}.map) or write it as YAML (molecule: {found[0]})", path)
    return found[0]


def _ranges(values: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    out, start = [], 0
    for k in range(1, len(values) + 1):
        if k == len(values) or values[k] != values[k - 1] + 1:
            out.append(str(values[start]) if k - start == 1 else f"{values[start]}-{values[k - 1]}")
            start = k
    return ", ".join(out)


# ---------------------------------------------------------------------------- writing


def _members_by_atom(mapping: MoleculeMapping) -> list[list[tuple[int, float]]]:
    """Per atom, its (bead, weight) pairs with the home bead first."""
    per_atom: list[list[tuple[int, float]]] = [[] for _ in range(mapping.n_atoms)]
    for (atom, bead), w in zip(mapping.membership.tolist(), mapping.weights.tolist()):
        per_atom[atom].append((bead, w))
    home = mapping.home_bead.tolist()
    return [sorted(pairs, key=lambda p: p[0] != home[a]) for a, pairs in enumerate(per_atom)]


def write_map(mapping: MoleculeMapping, path: str | Path, *, header: str = "", force: bool = False) -> Path:
    """Write DBM's ``.map`` format, with the weight column.

    Each atom's home bead is listed first, so reading the file back gives the same home
    beads; a home bead whose weight is below another of the atom's weights cannot be
    expressed in this format and raises ``ValueError``.
    """
    per_atom = _members_by_atom(mapping)
    lines = [f"; {h}".rstrip() for h in header.splitlines()] + ["[map]"]
    for a, pairs in enumerate(per_atom):
        if pairs and max(w for _, w in pairs) > pairs[0][1]:
            raise ValueError(f"atom {a + 1}: home bead {pairs[0][0] + 1} has a smaller weight than another of its "
                             "beads; the .map format cannot say so (write YAML instead)")
        for bead, w in pairs:
            lines.append(f"{a + 1:5d} {mapping.prior_types[a]:<6s} {bead + 1:4d} {mapping.bead_labels[bead]:<4s} {w!r}")
    lines += ["[/map]", "", "[align]", ";bead fixpoint"]
    lines += [f"{b + 1:5d} {f + 1:5d}" for b, f in enumerate(mapping.align.tolist()) if f >= 0]
    lines += ["[/align]", "", "[mult]", ";bead multiples"]
    lines += [f"{b + 1:5d} {m:5d}" for b, m in enumerate(mapping.mult.tolist())]
    lines += ["[/mult]", ""]
    return write_text(Path(path), "\n".join(lines), force)


class _Flow(dict):
    """A mapping written on one line (one bead or one atom per line)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Flow, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v.items(), flow_style=True))
_Dumper.add_representer(tuple, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def write_yaml(mapping: MoleculeMapping, path: str | Path, *, force: bool = False) -> Path:
    """Write the native YAML format (self-contained: bead names, types and CG bonds included)."""
    per_atom = _members_by_atom(mapping)
    home = mapping.home_bead.tolist()
    beads = []
    for b in range(mapping.n_beads):
        bead = {"name": mapping.bead_names[b], "type": mapping.bead_types[b], "label": mapping.bead_labels[b]}
        if mapping.align[b] >= 0:
            bead["align"] = int(mapping.align[b]) + 1
        beads.append(_Flow(bead | {"mult": int(mapping.mult[b])}))
    spec = {
        "version": 1, "molecule": mapping.molecule, "n_atoms": mapping.n_atoms, "center": mapping.center,
        "beads": beads, "cg_bonds": [(i + 1, j + 1) for i, j in mapping.cg_bonds.tolist()],
        "atoms": [_Flow(index=a + 1, prior_type=mapping.prior_types[a], home=home[a] + 1,
                        beads={b + 1: w for b, w in pairs}) for a, pairs in enumerate(per_atom) if pairs],
    }
    text = yaml.dump(spec, Dumper=_Dumper, sort_keys=False, width=200)
    return write_text(Path(path), text, force)
