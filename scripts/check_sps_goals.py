"""Issue 4's sPS goals, checked on a `gdbm eval` run that includes the published DBM.

    python scripts/check_sps_goals.py EVAL/metrics.json SET [SET ...]

Each pooled bond/angle/dihedral JSD, each per-type angle and improper JSD, the LJ-per-chain JSD and
the carbon RDF MAE at or below the published DBM's (set ``published_dbm``); CG RMSD <= 0.0035 nm; no
non-excluded pair closer than 0.1 nm; the LJ-per-chain standard deviation within 50% of the
reference's. Prints one line per goal; exits with 1 when a set misses any.
"""

from __future__ import annotations

import json
import sys


def check(sets: dict, name: str) -> list[tuple[str, str, bool]]:
    """``(goal, measured, met)`` for the set ``name``."""
    dbm, ref, m = sets["published_dbm"], sets["reference"], sets[name]
    keys = (["all_bonds", "all_angles", "all_dihedrals"]
            + [k for k in dbm if k.startswith(("angle/", "improper/"))] + ["lj_jsd", "rdf_mae_carbon"])
    out = [(f"{k} <= DBM", f"{m[k]:.4g} vs {dbm[k]:.4g}", m[k] <= dbm[k]) for k in keys]
    out.append(("CG RMSD <= 0.0035 nm", f"{m['cg_rmsd']:.4g}", m["cg_rmsd"] <= 0.0035))
    out.append(("no non-excluded pair < 0.1 nm", f"{m['clash_pairs_per_frame']} per frame",
                m["clash_pairs_per_frame"] == 0))
    ratio = m["lj_per_mol_std"] / ref["lj_per_mol_std"]
    out.append(("LJ/chain std within 50% of the reference's",
                f"{m['lj_per_mol_std']:.4g} vs {ref['lj_per_mol_std']:.4g}",
                0.5 <= ratio <= 1.5))
    return out


def main() -> int:
    sets = json.load(open(sys.argv[1]))["sets"]
    missed = 0
    for name in sys.argv[2:]:
        print(f"## {name}")
        for goal, measured, met in check(sets, name):
            print(f"  {'ok    ' if met else 'MISSED'} {goal:45s} {measured}")
            missed += not met
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
