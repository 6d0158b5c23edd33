"""Automatic CG mappings from fragment rules: SMARTS patterns whose matched atoms make one bead.

A rule is a SMARTS pattern over heavy atoms with a weight per pattern atom: 1 for an atom
the bead owns, a fraction for an atom shared with neighbouring beads (0.5: half of it
here, half in the next bead), 0 for context that must be there but is not part of the
bead. Rules are tried in order, each on all its matches in atom order; a match becomes a
bead when none of its atoms would exceed a total weight of 1 over all beads. Hydrogens
follow their heavy atom. The bead position is the centre of mass of its atoms, each
counted with its weight, as in gdbm's mapping files (:mod:`gdbm.topology.mapfiles`).

The default rules make the mappings of the DBM thesis: a phenyl ring is one bead (cumene's
C6H5, polystyrene's side group), an open-chain CH2 is one bead with half of each
neighbouring sp3 carbon (the sPS backbone bead, octane's inner beads), a methyl carries
half of its sp3 neighbour (cumene's end beads) or stands alone (toluene's), and any heavy atom still unmapped becomes
a bead of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rdkit import Chem

from gdbm.utils.errors import InputError
from gdbm.topology.mapfiles import load_mapping
from gdbm.topology.mapping import MoleculeMapping

_TOLERANCE = 1e-9


@dataclass(frozen=True)
class FragmentRule:
    """A SMARTS fragment that becomes one bead of ``type``; ``weights`` per pattern atom (default all 1)."""

    name: str
    smarts: str
    type: str
    label: str = ""
    weights: tuple[float, ...] | None = None

    def pattern(self) -> tuple[Chem.Mol, tuple[float, ...]]:
        """The compiled SMARTS and one weight per pattern atom; an :class:`InputError` if they do not fit."""
        query = Chem.MolFromSmarts(self.smarts)
        if query is None:
            raise InputError(f"rule {self.name!r}: invalid SMARTS {self.smarts!r}")
        weights = self.weights or (1.0,) * query.GetNumAtoms()
        if len(weights) != query.GetNumAtoms():
            raise InputError(f"rule {self.name!r}: {len(weights)} weights for the {query.GetNumAtoms()} atoms of "
                             f"{self.smarts!r}")
        if any(not 0 <= w <= 1 for w in weights) or max(weights) <= 0:
            raise InputError(f"rule {self.name!r}: weights must lie in [0, 1] with at least one above 0")
        return query, tuple(float(w) for w in weights)


DEFAULT_RULES = (
    FragmentRule("phenyl", "a1aaaaa1", "R", "SC"),
    FragmentRule("ch2", "[CX4;!R][CH2X4;!R][CX4;!R]", "B", "BB", (0.5, 1.0, 0.5)),
    FragmentRule("methyl", "[CH3X4][CX4;!R]", "M", "BB", (1.0, 0.5)),
    FragmentRule("lone_methyl", "[CH3X4]", "M", "BB"),
    FragmentRule("atom", "[!#1]", "X"),
)


class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    smarts: str
    type: str = Field(pattern=r"^\S+$")
    label: str = ""
    weights: list[float] | None = None


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[_RuleSpec] = Field(min_length=1)


def load_rules(path: str | Path) -> list[FragmentRule]:
    """Fragment rules from YAML: ``rules: [{name, smarts, type, label?, weights?}, ...]``, in order."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such rules file", path)
    try:
        spec = _RulesFile.model_validate(yaml.safe_load(path.read_text()))
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML: {err}", path) from None
    except ValidationError as err:
        first = err.errors()[0]
        raise InputError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", path) from None
    rules = [FragmentRule(r.name, r.smarts, r.type, r.label, None if r.weights is None else tuple(r.weights))
             for r in spec.rules]
    for rule in rules:
        try:
            rule.pattern()
        except InputError as err:
            raise InputError(err.message, path) from None
    return rules


Bead = tuple[FragmentRule, dict[int, float]]  # a rule and the {atom: weight} of its match


def _heavy_beads(mol: Chem.Mol, rules: list[FragmentRule] | tuple[FragmentRule, ...]) -> list[Bead]:
    """Beads over heavy atoms, in the order of each bead's first atom of largest weight."""
    total = [0.0] * mol.GetNumAtoms()
    beads = []
    for rule in rules:
        query, weights = rule.pattern()
        for match in mol.GetSubstructMatches(query, uniquify=True, maxMatches=1_000_000):
            if any(mol.GetAtomWithIdx(a).GetAtomicNum() == 1 for a in match):
                raise InputError(f"rule {rule.name!r} ({rule.smarts}) matches hydrogen atoms; rules describe heavy "
                                 "atoms and hydrogens follow their heavy atom")
            members = {a: w for a, w in zip(match, weights) if w > 0}
            if all(total[a] + w <= 1.0 + _TOLERANCE for a, w in members.items()):
                for a, w in members.items():
                    total[a] += w
                beads.append((rule, members))
    unmapped = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() > 1 and total[a.GetIdx()] == 0]
    if unmapped:
        names = ", ".join(f"{mol.GetAtomWithIdx(a).GetSymbol()}{a + 1}" for a in unmapped[:10])
        raise InputError(f"heavy atoms {names}{' ...' if len(unmapped) > 10 else ''} are in no bead; add a rule "
                         "that covers them (the default rules end with '[!#1]', one bead per leftover atom)")

    def first_owned(bead: Bead) -> int:
        top = max(bead[1].values())
        return min(a for a, w in bead[1].items() if w == top)

    return sorted(beads, key=first_owned)


def _members_per_atom(mol: Chem.Mol, beads: list[Bead]) -> list[list[tuple[int, float]]]:
    """Per atom its (bead, weight) pairs in bead order; a hydrogen has those of its heavy atom."""
    members: list[list[tuple[int, float]]] = [[] for _ in range(mol.GetNumAtoms())]
    for b, (_, atoms) in enumerate(beads):
        for a, w in atoms.items():
            members[a].append((b, w))
    for atom in mol.GetAtoms():
        if atom.GetAtomicNum() == 1:
            members[atom.GetIdx()] = list(members[atom.GetNeighbors()[0].GetIdx()])
    return members


def _cg_bonds(mol: Chem.Mol, members: list[list[tuple[int, float]]], home: list[int]) -> torch.Tensor:
    """Bead pairs ``[c, 2]`` that share an atom or whose home atoms are bonded."""
    bonds = {(i, j) for pairs in members for i, _ in pairs for j, _ in pairs if i < j}
    for bond in mol.GetBonds():
        i, j = sorted((home[bond.GetBeginAtomIdx()], home[bond.GetEndAtomIdx()]))
        if i != j:
            bonds.add((i, j))
    return torch.tensor(sorted(bonds), dtype=torch.long).view(-1, 2)


def fragment_mapping(mol: Chem.Mol, molecule: str, rules: list[FragmentRule] | tuple[FragmentRule, ...] = DEFAULT_RULES,
                     prior_types: list[str] | None = None) -> MoleculeMapping:
    """The mapping of ``mol`` (explicit hydrogens, in topology atom order) made by ``rules``.

    Beads are named by type and count (``R1``, ``B1``, ``R2``, ...). Each atom's home bead
    is its bead of largest weight (the first among ties). Beads are bonded when they share
    an atom or a chemical bond joins two atoms whose home beads they are (so a ring on a
    CH shared by two beads bonds to one of them). ``prior_types``: the force-field types.
    """
    beads = _heavy_beads(mol, rules)
    members = _members_per_atom(mol, beads)
    home = [max(pairs, key=lambda p: p[1])[0] for pairs in members]
    counts: dict[str, int] = {}
    names = []
    for rule, _ in beads:
        counts[rule.type] = counts.get(rule.type, 0) + 1
        names.append(f"{rule.type}{counts[rule.type]}")
    rows = [(a, b) for a, pairs in enumerate(members) for b, _ in pairs]
    weights = [w for pairs in members for _, w in pairs]
    return MoleculeMapping(
        molecule=molecule, n_atoms=mol.GetNumAtoms(), bead_names=names, bead_types=[rule.type for rule, _ in beads],
        bead_labels=[rule.label for rule, _ in beads], cg_bonds=_cg_bonds(mol, members, home),
        membership=torch.tensor(rows, dtype=torch.long).view(-1, 2), weights=torch.tensor(weights, dtype=torch.float64),
        home_bead=torch.tensor(home, dtype=torch.long),
        prior_types=list(prior_types) if prior_types else [a.GetSymbol() for a in mol.GetAtoms()],
        align=torch.full((len(beads),), -1, dtype=torch.long), mult=torch.ones(len(beads), dtype=torch.long),
        center="com", source="fragment rules")


def own_mappings(paths: list[str | Path]) -> dict[str, Path]:
    """``{molecule: file}`` of mappings of one's own (gdbm YAML, one per molecule) that replace the rules."""
    out: dict[str, Path] = {}
    for path in paths:
        if Path(path).suffix not in (".yaml", ".yml"):
            raise InputError("expected a gdbm YAML mapping (.yaml): it names its molecule and beads", path)
        molecule = load_mapping(path, partial=True).molecule
        if molecule in out:
            raise InputError(f"a second mapping for {molecule!r} (the first is {out[molecule]})", path)
        out[molecule] = Path(path)
    return out
