"""Issue 18's 17 items, checked on a `gdbm eval` run of sPS frames that includes the published DBM.

    python scripts/check_issue18.py EVAL/metrics.json SET [SET ...]

Prints one markdown row per set (the published DBM's first), bold where a set meets the item, and how many
of the 17 it meets: each of the 8 per-type angle JSDs, the backbone torsion C-C-C-C, the pooled angles and
dihedrals at or below the published DBM's; the LJ-per-chain JSD at or below DBM's and its mean within one
reference standard deviation; the carbon RDF MAE at or below DBM's; CG RMSD <= 0.0035 nm; no non-excluded
pair closer than 0.1 nm; no bond longer than 0.2 nm.
"""

from __future__ import annotations

import json
import sys

ANGLES = ["C-C-C", "C-C-C_AR", "C-C-H", "C-C_AR-C_AR", "C_AR-C-H", "C_AR-C_AR-C_AR", "C_AR-C_AR-H_AR", "H-C-H"]
AT_MOST_DBM = [f"angle/{a}" for a in ANGLES] + ["proper/C-C-C-C", "all_angles", "all_dihedrals", "lj_jsd",
                                                "rdf_mae_carbon"]
HEADER = ANGLES + ["C-C-C-C", "angles", "dihedrals", "LJ JSD", "C RDF", "LJ mean, std", "CG RMSD nm",
                   "pairs < 0.1 nm per frame", "bonds > 0.2 nm", "items met"]


def items(sets: dict, name: str) -> list[tuple[str, bool]]:
    """``(cell, met)`` for each of the 17 items of the set ``name``, in HEADER's order."""
    dbm, ref, m = sets["published_dbm"], sets["reference"], sets[name]
    out = [(f"{m[k]:.4f}", m[k] <= dbm[k]) for k in AT_MOST_DBM]
    near = abs(m["lj_per_mol_mean"] - ref["lj_per_mol_mean"]) <= ref["lj_per_mol_std"]
    out.append((f"{m['lj_per_mol_mean']:.0f}, {m['lj_per_mol_std']:.0f}", near))
    out.append((f"{m['cg_rmsd']:.4f}", m["cg_rmsd"] <= 0.0035))
    out.append((f"{m['clash_pairs_per_frame']:.2g}", m["clash_pairs_per_frame"] == 0))
    out.append((f"{100 * m['frac_bonds_over_0.2nm']:.3g}%", m["frac_bonds_over_0.2nm"] == 0))
    return out


def row(sets: dict, name: str) -> tuple[str, int]:
    """The markdown row of ``name`` and the number of items it meets."""
    cells = items(sets, name)
    met = sum(ok for _, ok in cells)
    shown = [f"**{c}**" if ok and name != "published_dbm" else c for c, ok in cells]
    return f"| {name} | " + " | ".join(shown) + f" | {met} of 17 |", met


def main() -> int:
    sets = json.load(open(sys.argv[1]))["sets"]
    print("| set | " + " | ".join(HEADER) + " |")
    print("| --- " * (len(HEADER) + 1) + "|")
    ref = sets["reference"]
    print(f"| reference | " + " | " * (len(AT_MOST_DBM)) + f"{ref['lj_per_mol_mean']:.0f}, {ref['lj_per_mol_std']:.0f}"
          f" | {ref['cg_rmsd']:.4f} | {ref['clash_pairs_per_frame']:.2g} | "
          f"{100 * ref['frac_bonds_over_0.2nm']:.3g}% | |")
    all_met = True
    for name in ["published_dbm", *sys.argv[2:]]:
        line, met = row(sets, name)
        print(line)
        all_met &= met == 17 or name == "published_dbm"
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
