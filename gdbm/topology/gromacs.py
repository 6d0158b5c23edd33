"""GROMACS ``.top``/``.itp`` reader producing a :class:`~gdbm.topology.Topology`.

A focused reader of our own: ParmEd rejects ``nrexcl 2`` (the sPS topology) and drops
``[pairs]``. Supported: ``[defaults]`` (combination rules 1, 2, 3; gen-pairs, fudge factors),
``[atomtypes]``, ``[bondtypes]``, ``[angletypes]``, ``[dihedraltypes]`` (4- and 2-type forms,
``X`` wildcards, multiple func-9 lines), ``[pairtypes]``, ``[nonbond_params]``, and per
molecule ``[atoms]``, ``[bonds]`` (func 1, 2, 5, 6; 8 and 9 as structure only), ``[pairs]``
(func 1, 2), ``[angles]`` (func 1, 2), ``[dihedrals]`` (func 1, 2, 3, 4, 9), ``[exclusions]``,
``[constraints]``; ``[system]`` and ``[molecules]``. Parameters missing on a term line are
looked up in the ``*types`` sections. A supplementary parameter file (GROMACS syntax, read
before the topology) supplies what an ``.itp`` lacks, such as ``[atomtypes]``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gdbm.utils.errors import InputError
from gdbm.topology.elements import guess_element
from gdbm.topology.paths import pairs_within
from gdbm.topology.preprocess import Line, preprocess
from gdbm.topology.topology import TERM_KINDS, LennardJones, MoleculeBlock, Term, Topology

DEG = math.pi / 180.0
# bond functions that are chemical bonds (count for nrexcl and the molecular graph)
_CHEMICAL_BONDS = {1, 2, 3, 4, 5, 7, 8}
_IGNORED_SECTIONS = {"position_restraints", "dihedral_restraints", "distance_restraints",
                     "orientation_restraints", "angle_restraints", "implicit_genborn_params",
                     "cmaptypes", "system"}


@dataclass
class _AtomType:
    mass: float
    charge: float
    v: float  # sigma (nm) or C6, per combination rule
    w: float  # epsilon (kJ/mol) or C12
    bonded_type: str
    atomic_number: int | None


@dataclass
class _Defaults:
    nbfunc: int = 1
    comb_rule: int = 2
    gen_pairs: bool = False
    fudge_lj: float = 1.0
    fudge_qq: float = 1.0


@dataclass
class _TermRows:
    """Rows of one term kind of a molecule type: local atom indices and parameter values."""

    index: list[tuple[int, ...]] = field(default_factory=list)
    params: list[tuple[float, ...]] = field(default_factory=list)


@dataclass
class _MoleculeType:
    name: str
    nrexcl: int
    line: Line
    names: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    resids: list[int] = field(default_factory=list)
    resnames: list[str] = field(default_factory=list)
    charges: list[float] = field(default_factory=list)
    masses: list[float] = field(default_factory=list)
    connectivity: list[tuple[int, int]] = field(default_factory=list)
    terms: dict[str, _TermRows] = field(default_factory=dict)
    exclusions: set[tuple[int, int]] = field(default_factory=set)

    def rows(self, kind: str) -> _TermRows:
        return self.terms.setdefault(kind, _TermRows())


@dataclass
class _ParameterTables:
    defaults: _Defaults | None = None
    atomtypes: dict[str, _AtomType] = field(default_factory=dict)
    bondtypes: dict[tuple[str, str], tuple[int, list[float]]] = field(default_factory=dict)
    angletypes: dict[tuple[str, str, str], tuple[int, list[float]]] = field(default_factory=dict)
    dihedraltypes: list[tuple[tuple[str, ...], int, list[float]]] = field(default_factory=list)
    pairtypes: dict[tuple[str, str], tuple[int, list[float]]] = field(default_factory=dict)
    nonbond_params: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)


def _floats(line: Line, fields: list[str], what: str) -> list[float]:
    try:
        values = [float(x) for x in fields]
    except ValueError:
        raise line.error(f"expected numbers for {what}, got {' '.join(fields)!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise line.error(f"expected finite numbers for {what}, got {' '.join(fields)!r}")
    return values


def _int(line: Line, token: str, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise line.error(f"expected an integer {what}, got {token!r}") from None


class _Reader:
    """Walks the preprocessed lines section by section and fills the parameter tables."""

    def __init__(self, require_parameters: bool):
        self.require_parameters = require_parameters
        self.tables = _ParameterTables()
        self.moltypes: dict[str, _MoleculeType] = {}
        self.molecules: list[tuple[str, int, Line]] = []
        self.current: _MoleculeType | None = None
        self.undefined_types: dict[str, Line] = {}  # atom type used in [ atoms ] -> its first line

    # ---- driving -------------------------------------------------------------------------
    def read(self, lines: list[Line]) -> None:
        section = None
        for line in lines:
            text = line.text
            if text.startswith("["):
                if not text.endswith("]"):
                    raise line.error(f"expected a section header like '[ atoms ]', got {text!r}")
                name = text[1:-1].strip().lower()
                section = None if name.startswith("/") else name  # DBM's '[/name]' closers
                if section is not None and not hasattr(self, f"_sec_{section}") and section not in _IGNORED_SECTIONS:
                    raise line.error(f"unsupported section [ {section} ]")
                continue
            if section is None:
                raise line.error("expected a section header before this line")
            if section in _IGNORED_SECTIONS:
                continue
            getattr(self, f"_sec_{section}")(line, text.split())

    def _check_lj(self, line: Line, v: float, w: float, what: str) -> None:
        """Lennard-Jones values as written must not be negative (sigma, epsilon; or C6, C12 under rule 1)."""
        rule = self.tables.defaults.comb_rule if self.tables.defaults else 2
        names = ("C6", "C12") if rule == 1 else ("sigma", "epsilon")
        for name, value in zip(names, (v, w)):
            if value < 0:
                raise line.error(f"negative {name} {value:g} for {what}; expected {names[0]} >= 0 and "
                                 f"{names[1]} >= 0 (combination rule {rule})")

    def _molecule(self, line: Line) -> _MoleculeType:
        if self.current is None:
            raise line.error("molecule section before any [ moleculetype ]")
        return self.current

    def _need(self, line: Line, fields: list[str], n: int, layout: str) -> None:
        if len(fields) < n:
            raise line.error(f"expected {layout}, got {line.text!r}")

    # ---- parameter sections --------------------------------------------------------------
    def _sec_defaults(self, line: Line, f: list[str]) -> None:
        self._need(line, f, 2, "nbfunc comb-rule [gen-pairs fudgeLJ fudgeQQ]")
        d = _Defaults(_int(line, f[0], "nbfunc"), _int(line, f[1], "comb-rule"))
        if d.nbfunc != 1:
            raise line.error(f"only Lennard-Jones (nbfunc 1) is supported, got {d.nbfunc}")
        if d.comb_rule not in (1, 2, 3):
            raise line.error(f"expected combination rule 1, 2 or 3, got {d.comb_rule}")
        if len(f) > 2:
            d.gen_pairs = f[2].lower().startswith("y")
        if len(f) > 3:
            d.fudge_lj = _floats(line, f[3:4], "fudgeLJ")[0]
        if len(f) > 4:
            d.fudge_qq = _floats(line, f[4:5], "fudgeQQ")[0]
        self.tables.defaults = d

    def _sec_atomtypes(self, line: Line, f: list[str]) -> None:
        layout = "name [bonded-type] [atomic-number] mass charge ptype V W"
        self._need(line, f, 6, layout)
        if f[-3] not in ("A", "S", "V", "D"):
            raise line.error(f"expected {layout} with ptype A/S/V/D third from last, got {line.text!r}")
        mass, charge, v, w = _floats(line, [f[-5], f[-4], f[-2], f[-1]], "mass charge V W")
        self._check_lj(line, v, w, f"atom type {f[0]!r}")
        if mass < 0:
            raise line.error(f"negative mass {mass:g} for atom type {f[0]!r}; expected a mass >= 0 (u)")
        extra = f[1:-5]
        bonded, z = f[0], None
        for token in extra:
            if token.lstrip("-").isdigit():
                z = int(token)
            else:
                bonded = token
        self.tables.atomtypes[f[0]] = _AtomType(mass, charge, v, w, bonded, z)

    def _sec_bondtypes(self, line: Line, f: list[str]) -> None:
        self._need(line, f, 3, "ai aj func params")
        self.tables.bondtypes[(f[0], f[1])] = (_int(line, f[2], "func"), _floats(line, f[3:], "bond parameters"))

    def _sec_constrainttypes(self, line: Line, f: list[str]) -> None:
        self._need(line, f, 3, "ai aj func b0")

    def _sec_angletypes(self, line: Line, f: list[str]) -> None:
        self._need(line, f, 4, "ai aj ak func params")
        self.tables.angletypes[(f[0], f[1], f[2])] = (_int(line, f[3], "func"), _floats(line, f[4:], "angle parameters"))

    def _sec_dihedraltypes(self, line: Line, f: list[str]) -> None:
        # 4-type form "i j k l func ..." or old 2-type form "i j func ..." / "i l func ..."
        if len(f) >= 5 and f[4].isdigit() and not f[2].isdigit():
            types, func, rest = tuple(f[:4]), _int(line, f[4], "func"), f[5:]
        elif len(f) >= 3 and f[2].isdigit():
            func = _int(line, f[2], "func")
            types = ("X", f[0], f[1], "X") if func in (1, 3, 9) else (f[0], "X", "X", f[1])
            rest = f[3:]
        else:
            raise line.error(f"expected 'ai aj ak al func params' in [ dihedraltypes ], got {line.text!r}")
        self.tables.dihedraltypes.append((types, func, _floats(line, rest, "dihedral parameters")))

    def _sec_pairtypes(self, line: Line, f: list[str]) -> None:
        self._need(line, f, 5, "ai aj func V W")
        params = _floats(line, f[3:], "pair parameters")
        self._check_lj(line, params[0], params[1], f"[ pairtypes ] {f[0]}-{f[1]}")
        self.tables.pairtypes[(f[0], f[1])] = (_int(line, f[2], "func"), params)

    def _sec_nonbond_params(self, line: Line, f: list[str]) -> None:
        self._need(line, f, 5, "ai aj func V W")
        v, w = _floats(line, f[3:5], "V W")
        self._check_lj(line, v, w, f"[ nonbond_params ] {f[0]}-{f[1]}")
        self.tables.nonbond_params[(f[0], f[1])] = (v, w)

    # ---- molecule sections ---------------------------------------------------------------
    def _sec_moleculetype(self, line: Line, f: list[str]) -> None:
        self._need(line, f, 2, "name nrexcl")
        if f[0] in self.moltypes:
            raise line.error(f"molecule type {f[0]!r} defined twice")
        nrexcl = _int(line, f[1], "nrexcl")
        if nrexcl < 0:
            raise line.error(f"molecule type {f[0]!r}: nrexcl {nrexcl}; expected an integer >= 0 (bonds apart "
                             "within which non-bonded pairs are excluded)")
        self.current = _MoleculeType(f[0], nrexcl, line)
        self.moltypes[f[0]] = self.current

    def _sec_atoms(self, line: Line, f: list[str]) -> None:
        mol = self._molecule(line)
        self._need(line, f, 5, "nr type resnr residue atom [cgnr charge mass]")
        nr = _int(line, f[0], "atom number")
        if nr != len(mol.names) + 1:
            raise line.error(f"expected atom number {len(mol.names) + 1}, got {nr}")
        atype = self.tables.atomtypes.get(f[1])
        if atype is None:
            self.undefined_types.setdefault(f[1], line)
        charge = _floats(line, f[6:7], "charge")[0] if len(f) > 6 else (atype.charge if atype else 0.0)
        mass = _floats(line, f[7:8], "mass")[0] if len(f) > 7 else (atype.mass if atype else math.nan)
        if mass < 0:
            raise line.error(f"negative mass {mass:g} for atom {f[0]} ({f[4]}); expected a mass >= 0 (u)")
        mol.names.append(f[4])
        mol.types.append(f[1])
        mol.resids.append(_int(line, f[2], "residue number"))
        mol.resnames.append(f[3])
        mol.charges.append(charge)
        mol.masses.append(mass)

    def _atoms_of(self, line: Line, tokens: list[str], mol: _MoleculeType) -> tuple[int, ...]:
        idx = tuple(_int(line, t, "atom index") - 1 for t in tokens)
        for i, t in zip(idx, tokens):
            if not 0 <= i < len(mol.names):
                raise line.error(f"atom {t} is out of range: molecule {mol.name!r} has {len(mol.names)} atoms")
        return idx

    def undefined_types_error(self) -> InputError:
        """The atom types used but never defined, at the line of the first use."""
        names = sorted(self.undefined_types)
        first = min((self.undefined_types[n] for n in names), key=lambda ln: (ln.path, ln.number))
        return first.error(f"atom types without parameters: {', '.join(names)} (used in [ atoms ] but with no "
                           "[ atomtypes ] entry); pass a parameter file that defines them (--parameters), or read "
                           "the structure only")

    def _require_defined(self, mol: _MoleculeType, idx: tuple[int, ...]) -> None:
        """Parameters are looked up by atom type: an undefined type is the error, not the missing parameters."""
        if any(mol.types[i] in self.undefined_types for i in idx):
            raise self.undefined_types_error()

    def _btype(self, mol: _MoleculeType, i: int) -> str:
        self._require_defined(mol, (i,))
        t = self.tables.atomtypes.get(mol.types[i])
        return t.bonded_type if t else mol.types[i]

    def _sec_bonds(self, line: Line, f: list[str]) -> None:
        mol = self._molecule(line)
        self._need(line, f, 3, "ai aj func [params]")
        i, j = self._atoms_of(line, f[:2], mol)
        func = _int(line, f[2], "bond func")
        if func in _CHEMICAL_BONDS:
            mol.connectivity.append((min(i, j), max(i, j)))
        if func == 5 or not self.require_parameters:
            return
        kinds = {1: "bond_harmonic", 6: "bond_harmonic", 2: "bond_g96"}
        if func not in kinds:
            raise line.error(f"bond func {func} is not supported (expected 1, 2, 5 or 6)")
        params = _floats(line, f[3:5], "b0 kb") if len(f) >= 5 else self._lookup_bond(line, mol, i, j, func)
        b0, kb = params[:2]
        mol.rows(kinds[func]).index.append((i, j))
        mol.rows(kinds[func]).params.append((b0, kb))

    def _lookup_bond(self, line: Line, mol: _MoleculeType, i: int, j: int, func: int) -> list[float]:
        a, b = self._btype(mol, i), self._btype(mol, j)
        hit = self.tables.bondtypes.get((a, b)) or self.tables.bondtypes.get((b, a))
        if hit is None or hit[0] != func:
            raise line.error(f"no parameters for bond {a}-{b} (func {func}) on the line or in [ bondtypes ]")
        return hit[1]

    def _sec_constraints(self, line: Line, f: list[str]) -> None:
        mol = self._molecule(line)
        self._need(line, f, 3, "ai aj func [b0]")
        i, j = self._atoms_of(line, f[:2], mol)
        if _int(line, f[2], "constraint func") == 1:
            mol.connectivity.append((min(i, j), max(i, j)))

    def _sec_angles(self, line: Line, f: list[str]) -> None:
        mol = self._molecule(line)
        self._need(line, f, 4, "ai aj ak func [params]")
        idx = self._atoms_of(line, f[:3], mol)
        if not self.require_parameters:
            return
        func = _int(line, f[3], "angle func")
        kinds = {1: "angle_harmonic", 2: "angle_g96"}
        if func not in kinds:
            raise line.error(f"angle func {func} is not supported (expected 1 or 2)")
        if len(f) >= 6:
            theta0, k = _floats(line, f[4:6], "theta0 k")
        else:
            types = tuple(self._btype(mol, i) for i in idx)
            hit = self.tables.angletypes.get(types) or self.tables.angletypes.get(types[::-1])
            if hit is None or hit[0] != func:
                raise line.error(f"no parameters for angle {'-'.join(types)} (func {func}) on the line or in [ angletypes ]")
            theta0, k = hit[1][:2]
        mol.rows(kinds[func]).index.append(idx)
        mol.rows(kinds[func]).params.append((theta0 * DEG, k))

    def _sec_dihedrals(self, line: Line, f: list[str]) -> None:
        mol = self._molecule(line)
        self._need(line, f, 5, "ai aj ak al func [params]")
        idx = self._atoms_of(line, f[:4], mol)
        if not self.require_parameters:
            return
        func = _int(line, f[4], "dihedral func")
        if func not in (1, 2, 3, 4, 9):
            raise line.error(f"dihedral func {func} is not supported (expected 1, 2, 3, 4 or 9)")
        n_params = {1: 3, 9: 3, 4: 3, 2: 2, 3: 6}[func]
        if len(f) > 5:
            rows = [_floats(line, f[5:5 + n_params], "dihedral parameters")]
            if len(rows[0]) != n_params:
                raise line.error(f"expected {n_params} parameters for dihedral func {func}, got {len(rows[0])}")
        else:
            rows = self._lookup_dihedral(line, mol, idx, func)
        for p in rows:
            if func in (1, 9, 4):
                kind = "proper_periodic" if func != 4 else "improper_periodic"
                params = (p[0] * DEG, p[1], p[2])
            elif func == 2:
                kind, params = "improper_harmonic", (p[0] * DEG, p[1])
            else:
                kind, params = "proper_rb", tuple(p[:6])
            mol.rows(kind).index.append(idx)
            mol.rows(kind).params.append(params)

    def _lookup_dihedral(self, line: Line, mol: _MoleculeType, idx: tuple[int, ...], func: int) -> list[list[float]]:
        types = tuple(self._btype(mol, i) for i in idx)
        family = {1: (1, 9), 9: (1, 9), 3: (3,), 2: (2,), 4: (4,)}[func]

        def matches(pattern: tuple[str, ...], query: tuple[str, ...]) -> bool:
            return all(p == "X" or p == q for p, q in zip(pattern, query))

        best: list[list[float]] = []
        best_wild = 5
        for k, (pattern, pfunc, params) in enumerate(self.tables.dihedraltypes):
            if pfunc not in family or not (matches(pattern, types) or matches(pattern, types[::-1])):
                continue
            wild = pattern.count("X")
            if wild < best_wild:
                best_wild, best = wild, [params]
                # func 9: consecutive lines with the same pattern all apply
                for later_pattern, later_func, later_params in self.tables.dihedraltypes[k + 1:]:
                    if later_pattern != pattern or later_func != 9 or pfunc != 9:
                        break
                    best.append(later_params)
        if not best:
            raise line.error(f"no parameters for dihedral {'-'.join(types)} (func {func}) on the line or in [ dihedraltypes ]")
        return best

    def _sec_pairs(self, line: Line, f: list[str]) -> None:
        mol = self._molecule(line)
        self._need(line, f, 3, "ai aj func [params]")
        i, j = self._atoms_of(line, f[:2], mol)
        if not self.require_parameters:
            return
        func = _int(line, f[2], "pair func")
        defaults = self._defaults(line)
        qi, qj = mol.charges[i], mol.charges[j]
        if func == 2:
            self._need(line, f, 8, "ai aj 2 fudgeQQ qi qj V W")
            fqq, qi, qj, v, w = _floats(line, f[3:8], "fudgeQQ qi qj V W")
            self._check_lj(line, v, w, "this pair")
            c6, c12 = self._c6c12(v, w)
            qq = fqq * qi * qj
        elif func == 1:
            if len(f) >= 5:
                v, w = _floats(line, f[3:5], "V W")
                self._check_lj(line, v, w, "this pair")
                c6, c12 = self._c6c12(v, w)
            else:
                self._require_defined(mol, (i, j))
                a, b = mol.types[i], mol.types[j]
                hit = self.tables.pairtypes.get((a, b)) or self.tables.pairtypes.get((b, a))
                if hit is not None:
                    c6, c12 = self._c6c12(*hit[1][:2])
                elif defaults.gen_pairs:
                    c6, c12 = self._combine(line, a, b, use_nonbond_params=False)
                    c6, c12 = c6 * defaults.fudge_lj, c12 * defaults.fudge_lj
                else:
                    raise line.error(f"no parameters for pair {a}-{b}: not on the line, not in [ pairtypes ], gen-pairs is off")
            qq = defaults.fudge_qq * qi * qj
        else:
            raise line.error(f"pair func {func} is not supported (expected 1 or 2)")
        mol.rows("pair_lj").index.append((i, j))
        mol.rows("pair_lj").params.append((c6, c12, qq))

    def _sec_exclusions(self, line: Line, f: list[str]) -> None:
        mol = self._molecule(line)
        idx = self._atoms_of(line, f, mol)
        for j in idx[1:]:
            if j != idx[0]:
                mol.exclusions.add((min(idx[0], j), max(idx[0], j)))

    def _sec_molecules(self, line: Line, f: list[str]) -> None:
        self._need(line, f, 2, "molecule-name count")
        count = int(f[1]) if re.fullmatch(r"[+-]?\d+", f[1]) else -1
        if count < 0:
            raise line.error(f"molecule {f[0]!r}: expected an integer count >= 0, got {f[1]!r}")
        self.molecules.append((f[0], count, line))

    # ---- non-bonded parameters -----------------------------------------------------------
    def _defaults(self, line: Line) -> _Defaults:
        if self.tables.defaults is None:
            raise line.error("no [ defaults ] section before this line (pass a parameter file that has one)")
        return self.tables.defaults

    def _c6c12(self, v: float, w: float) -> tuple[float, float]:
        """(V, W) as written under the current combination rule -> (C6, C12)."""
        if self.tables.defaults is None or self.tables.defaults.comb_rule == 1:
            return v, w
        return 4.0 * w * v**6, 4.0 * w * v**12

    def _combine(self, line: Line, a: str, b: str, use_nonbond_params: bool = True) -> tuple[float, float]:
        if use_nonbond_params:
            hit = self.tables.nonbond_params.get((a, b)) or self.tables.nonbond_params.get((b, a))
            if hit is not None:
                return self._c6c12(*hit)
        ta, tb = self.tables.atomtypes[a], self.tables.atomtypes[b]
        rule = self._defaults(line).comb_rule
        if rule == 1:
            return math.sqrt(ta.v * tb.v), math.sqrt(ta.w * tb.w)
        sigma = 0.5 * (ta.v + tb.v) if rule == 2 else math.sqrt(ta.v * tb.v)
        return self._c6c12(sigma, math.sqrt(ta.w * tb.w))


def _replicate(index: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Local ``[m, k]`` indices of one molecule type -> global ``[count * m, k]`` indices."""
    return (index.unsqueeze(0) + offsets.view(-1, 1, 1)).reshape(-1, index.shape[1])


def _build(reader: _Reader, path: Path, n_molecules: int | None) -> Topology:
    molecules = reader.molecules
    if not molecules:
        if len(reader.moltypes) != 1:
            raise InputError(f"no [ molecules ] section and {len(reader.moltypes)} molecule types; "
                             "expected a .top file or an .itp with exactly one [ moleculetype ]", path)
        only = next(iter(reader.moltypes.values()))
        molecules = [(only.name, 1 if n_molecules is None else n_molecules, only.line)]
    elif n_molecules is not None:
        raise InputError("n_molecules is only for .itp files; this topology has a [ molecules ] section", path)

    _check_not_empty(reader, molecules)
    required = reader.require_parameters
    if required:
        _check_parameters(reader, path, [reader.moltypes[name] for name, _, _ in molecules if name in reader.moltypes])

    per_atom: dict[str, list] = {k: [] for k in ("names", "types", "resnames", "elements")}
    masses, charges, resids, mol_index = [], [], [], []
    blocks: list[MoleculeBlock] = []
    connectivity, exclusions = [], []
    term_index: dict[str, list[torch.Tensor]] = {}
    term_params: dict[str, list[torch.Tensor]] = {}
    start = 0
    for name, count, line in molecules:
        mol = reader.moltypes.get(name)
        if mol is None:
            raise line.error(f"molecule {name!r} has no [ moleculetype ]")
        n = len(mol.names)
        offsets = start + n * torch.arange(count)  # [count]
        atomtypes = reader.tables.atomtypes
        elements = [guess_element(t, m, atomtypes[t].atomic_number if t in atomtypes else None)
                    for t, m in zip(mol.types, mol.masses)]
        for key, values in (("names", mol.names), ("types", mol.types), ("resnames", mol.resnames),
                            ("elements", elements)):
            per_atom[key].extend(values * count)
        masses.append(torch.tensor(mol.masses, dtype=torch.float64).repeat(count))
        charges.append(torch.tensor(mol.charges, dtype=torch.float64).repeat(count))
        resids.append(torch.tensor(mol.resids, dtype=torch.long).repeat(count))
        mol_index.append(torch.arange(len(blocks), len(blocks) + count).repeat_interleave(n))
        blocks.extend(MoleculeBlock(name, int(o), n) for o in offsets)
        bonds = sorted(set(mol.connectivity))
        connectivity.append(_replicate(torch.tensor(bonds, dtype=torch.long).view(-1, 2), offsets))
        excl = sorted(set(pairs_within(n, bonds, mol.nrexcl)) | mol.exclusions)
        exclusions.append(_replicate(torch.tensor(excl, dtype=torch.long).view(-1, 2), offsets))
        for kind, rows in mol.terms.items():
            spec = TERM_KINDS[kind]
            idx = torch.tensor(rows.index, dtype=torch.long).view(-1, spec.arity)
            term_index.setdefault(kind, []).append(_replicate(idx, offsets))
            term_params.setdefault(kind, []).append(torch.tensor(rows.params, dtype=torch.float64).repeat(count, 1))
        start += n * count

    terms = {}
    for kind, chunks in term_index.items():
        params = torch.cat(term_params[kind])  # [m, n_params]
        terms[kind] = Term(kind, torch.cat(chunks),
                           {p: params[:, c].contiguous() for c, p in enumerate(TERM_KINDS[kind].params)})
    types = per_atom["types"]
    lj = _lennard_jones(reader, types, path) if required else None
    defaults = reader.tables.defaults or _Defaults()
    return Topology(
        names=per_atom["names"], types=types, elements=per_atom["elements"],
        masses=torch.cat(masses), charges=torch.cat(charges), resids=torch.cat(resids),
        resnames=per_atom["resnames"], molecule=torch.cat(mol_index), molecules=blocks,
        connectivity=torch.cat(connectivity), terms=terms, exclusions=torch.cat(exclusions),
        lj=lj, fudge_lj=defaults.fudge_lj, fudge_qq=defaults.fudge_qq, source=str(path),
    )


def _check_not_empty(reader: _Reader, molecules: list[tuple[str, int, Line]]) -> None:
    """Every listed molecule type must exist (else: its line in [ molecules ]) and the system must hold atoms."""
    for name, _, line in molecules:
        if name not in reader.moltypes:
            raise line.error(f"molecule {name!r} has no [ moleculetype ]")
    if sum(len(reader.moltypes[name].names) * count for name, count, _ in molecules) == 0:
        raise molecules[-1][2].error("the system holds no atoms (every molecule count is 0 or its molecule type has "
                                     "no [ atoms ]); expected at least one atom")


def _check_parameters(reader: _Reader, path: Path, moltypes: list[_MoleculeType]) -> None:
    used = {t for mol in moltypes for t in mol.types}
    if used - set(reader.tables.atomtypes):
        raise reader.undefined_types_error()
    if reader.tables.defaults is None:
        raise InputError("no [ defaults ] section; pass a parameter file that has one (--parameters)", path)
    for mol in moltypes:
        if any(math.isnan(m) for m in mol.masses):
            raise mol.line.error(f"molecule {mol.name!r}: an atom has no mass (neither in [ atoms ] nor its type)")


def _lennard_jones(reader: _Reader, types: list[str], path: Path) -> LennardJones:
    names = sorted(set(types))
    code = {t: k for k, t in enumerate(names)}
    dummy = Line("", str(path), 0)
    c6 = torch.zeros(len(names), len(names), dtype=torch.float64)
    c12 = torch.zeros_like(c6)
    for a in names:
        for b in names:
            c6[code[a], code[b]], c12[code[a], code[b]] = reader._combine(dummy, a, b)
    return LennardJones(torch.tensor([code[t] for t in types], dtype=torch.long), names, c6, c12)


def read_topology(path: str | Path, *, parameters: str | Path | None = None, require_parameters: bool = True,
                  n_molecules: int | None = None, defines: dict[str, str] | None = None,
                  include_dirs: list[str | Path] | None = None) -> Topology:
    """Read a GROMACS ``.top`` (whole system) or an ``.itp`` with one molecule type.

    ``parameters``: a supplementary file in GROMACS syntax read first (``[defaults]``,
    ``[atomtypes]``, ``*types``), for ``.itp`` files that lack them. ``require_parameters=False``
    reads the structure only (names, types, masses, connectivity, exclusions), as for CG
    ``.itp`` files whose bead types carry no parameters. ``n_molecules`` copies an ``.itp``.
    """
    path = Path(path)
    dirs = [Path(d) for d in include_dirs or []]
    reader = _Reader(require_parameters)
    if parameters is not None:
        reader.read(preprocess(parameters, defines, dirs))
    reader.current = None
    reader.read(preprocess(path, defines, dirs))
    return _build(reader, path, n_molecules)


def read_system(paths: list[str | Path], molecules: list[tuple[str, int]], *, require_parameters: bool = True,
                parameters: str | Path | None = None, defines: dict[str, str] | None = None,
                include_dirs: list[str | Path] | None = None) -> Topology:
    """A system of the molecule types defined in several ``.itp`` files, listed as ``molecules``.

    As a ``.top`` that includes ``paths`` in order and lists ``molecules`` (``(name, count)`` in
    order) in its ``[ molecules ]`` section would read: e.g. a mixture's CG topology from one CG
    ``.itp`` per molecule type, in the order of the AA topology's molecules.
    """
    paths = [Path(p) for p in paths]
    if not paths or not molecules:
        raise ValueError("read_system needs at least one file and one molecule")
    source = Path(" + ".join(str(p) for p in paths))
    dirs = [Path(d) for d in include_dirs or []]
    reader = _Reader(require_parameters)
    if parameters is not None:
        reader.read(preprocess(parameters, defines, dirs))
    for path in paths:
        reader.current = None
        reader.read(preprocess(path, defines, dirs))
    if reader.molecules:
        raise reader.molecules[0][2].error("a [ molecules ] section in a file of molecule types; expected .itp "
                                          "files (or read the .top alone)")
    reader.molecules = [(name, count, Line(f"{name} {count}", str(source), k + 1))
                        for k, (name, count) in enumerate(molecules)]
    return _build(reader, source, None)
