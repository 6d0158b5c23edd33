"""Chemical elements of force-field atoms, from atomic number, type name and mass (via RDKit)."""

from __future__ import annotations

import math
from functools import lru_cache

from rdkit import Chem

UNKNOWN = "X"
_UNITED_ATOM_TOLERANCE = 4.0  # amu: CH3 (15.035) is still carbon
_MASS_TOLERANCE = 0.5  # amu: nearest element by mass alone


@lru_cache(maxsize=1)
def _table() -> dict[str, float]:
    pt = Chem.GetPeriodicTable()
    return {pt.GetElementSymbol(z): pt.GetAtomicWeight(z) for z in range(1, 87)}


def symbol_from_number(z: int) -> str:
    return Chem.GetPeriodicTable().GetElementSymbol(int(z))


def guess_element(type_name: str, mass: float, atomic_number: int | None = None) -> str:
    """Element symbol of an atom, or ``"X"`` for particles that are not atoms (CG beads).

    Order of evidence: the atomic number of the atom type; the leading letters of the type
    name when the mass agrees within a united-atom tolerance (``CH2``, ``CAro``, ``HC``); the
    nearest element by mass alone.
    """
    if atomic_number is not None and atomic_number > 0:
        return symbol_from_number(atomic_number)
    table = _table()
    if not math.isfinite(mass):
        return UNKNOWN
    letters = "".join(ch for ch in type_name[:2] if ch.isalpha())
    for candidate in (letters[:2].capitalize(), letters[:1].upper()):
        if candidate in table and abs(table[candidate] - mass) <= _UNITED_ATOM_TOLERANCE:
            return candidate
    symbol, weight = min(table.items(), key=lambda kv: abs(kv[1] - mass))
    return symbol if abs(weight - mass) <= _MASS_TOLERANCE else UNKNOWN
