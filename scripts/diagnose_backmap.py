"""Where the defects of backmapped frames sit: long bonds, close pairs, LJ excess, CG offsets, grid reach.

For issue 18 (what holds the generator's raw output back). Compares generated AA frames with
the reference frames of the same CG frames and prints Markdown tables:

- bonds longer than 0.2 nm and the bond-length error, by atom-type pair and by whether the bond
  joins two atoms of one reconstruction bead (``--map``) or of two;
- non-excluded pairs closer than 0.1 / 0.15 nm, by type pair and by their beads' distance along the chain;
- the LJ energy per chain split into intra-bead, neighbouring-bead (1, 2, 3+ beads apart) and
  inter-chain pairs, and the share of the excess from pairs above 10 kJ/mol;
- the CG deviation (by ``--cg-map``, the mapping that made the CG frames) per bead type, its
  systematic part (mean in the bead's local frame) and its part from shared atoms;
- how far atoms lie from their home bead in the bead's local (fixpoint-aligned) frame: the
  voxel grid's centres reach +-0.525 nm per axis.

    python scripts/diagnose_backmap.py --top S/topol.top --map S/PS1.map --cg-map S/PS1_cg_fritz.map \
        --ref T/aa.xtc --ref-struct T/aa.gro --gen runs/x.xtc --cg T/cg.xtc --cg-struct T/cg.gro --frames 0:3
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict

import torch

from gdbm.data.environment import fixpoints, local_frames
from gdbm.data.trajectory import frame_range, read_frames
from gdbm.utils.pbc import minimum_image
from gdbm.physics.constraints import bond_constraints
from gdbm.physics.energy import EnergyModel
from gdbm.physics.neighbors import nearest_excluded, neighbor_pairs, pair_vectors
from gdbm.physics.nonbonded import lj_energy
from gdbm.topology.system import load_mapped_system

GRID_REACH = 0.525  # nm: the outermost voxel centre of an 8^3 grid of 0.15 nm


def table(header: list[str], rows: list[list]) -> str:
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def bonds_report(top, home, sets, frames):
    pairs, b0 = bond_constraints(top)
    types = top.types
    same = home[pairs[:, 0]] == home[pairs[:, 1]]
    key = [("intra" if s else "inter") + f" {'-'.join(sorted((types[i], types[j])))}"
           for (i, j), s in zip(pairs.tolist(), same.tolist())]
    out = []
    for name, (pos, box) in sets.items():
        d = minimum_image(pos[:, pairs[:, 1]] - pos[:, pairs[:, 0]], box)
        length = d.norm(dim=-1)  # [F, m]
        err = (length - b0.float()).abs()
        stats = defaultdict(lambda: [0, 0, 0.0])
        for k, (e, long_) in enumerate(zip(err.T.tolist(), (length > 0.2).T.tolist())):
            s = stats[key[k]]
            s[0] += len(e)
            s[1] += sum(long_)
            s[2] += sum(e)
        rows = [[k, v[0] // frames, v[1], v[2] / v[0]] for k, v in sorted(stats.items())]
        out.append(f"\n**{name}**: bonds by class (per frame count, long bonds > 0.2 nm in all frames, mean |b - b0| nm)\n")
        out.append(table(["class", "per frame", "> 0.2 nm", "mean abs error"], rows))
    return "\n".join(out)


def close_pairs_report(top, home, sets):
    out = []
    for name, (pos, box) in sets.items():
        pairs = neighbor_pairs(pos, box, 0.15)
        r = pair_vectors(pos, box, pairs).norm(dim=-1)
        keep = ~nearest_excluded(pairs, r, top.exclusions, top.n_atoms) & (pairs.i != pairs.j)
        pairs, r = pairs.select(keep), r[keep]
        rows = Counter()
        for i, j, d in zip(pairs.i.tolist(), pairs.j.tolist(), r.tolist()):
            chain = "inter" if top.molecule[i] != top.molecule[j] else f"intra, {abs(int(home[i]) - int(home[j]))} beads apart"
            rows[("<0.1" if d < 0.1 else "0.1-0.15", "-".join(sorted((top.types[i], top.types[j]))), chain)] += 1
        out.append(f"\n**{name}**: non-excluded pairs closer than 0.15 nm (all frames)\n")
        out.append(table(["distance nm", "types", "where", "count"], [[*k, v] for k, v in sorted(rows.items())]))
    return "\n".join(out)


def lj_report(top, home, sets, n_frames):
    model = EnergyModel(top, cutoff=1.0)
    lj = top.lj
    nt = lj.c6.shape[0]
    rows = []
    for name, (pos, box) in sets.items():
        pairs = model.pair_list(pos, box)
        r2 = (pair_vectors(pos, box, pairs) ** 2).sum(-1).double()
        tp = lj.atom_type[pairs.i] * nt + lj.atom_type[pairs.j]
        e = lj_energy(r2, lj.c6.flatten()[tp], lj.c12.flatten()[tp])
        same = top.molecule[pairs.i] == top.molecule[pairs.j]
        gap = (home[pairs.i] - home[pairs.j]).abs()
        classes = {"same bead": same & (gap == 0), "1 bead apart": same & (gap == 1),
                   "2 beads apart": same & (gap == 2), "3+ beads apart": same & (gap >= 3), "inter-chain": ~same}
        per_chain = n_frames * top.n_molecules
        row = [name] + [float(e[m].sum()) / per_chain for m in classes.values()]
        row += [float(e.sum()) / per_chain, float(e[e > 10].sum()) / per_chain, int((e > 10).sum()) / n_frames]
        rows.append(row)
    return table(["set", *["same bead", "1 bead apart", "2 beads apart", "3+ beads apart", "inter-chain (half each)"],
                  "total LJ/chain", "from pairs > 10 kJ/mol", "pairs > 10 kJ/mol per frame"], rows)


def cg_report(cg_mapping, recon_mapping, sets, cg_pos, masses):
    fix = fixpoints(recon_mapping)
    n_beads = cg_mapping.n_beads
    shared = torch.bincount(cg_mapping.membership[:, 0], minlength=len(masses)) > 1
    atom, bead = cg_mapping.membership.T
    shared_bead = torch.zeros(n_beads, dtype=torch.bool)
    shared_bead[bead[shared[atom]]] = True
    rows = []
    for name, (pos, box) in sets.items():
        f = pos.shape[0]
        mapped = cg_mapping.map_positions(pos.double(), box.double())
        dev = minimum_image(mapped - cg_pos.double(), box.double())  # [F, N, 3]
        frame = torch.arange(f).repeat_interleave(n_beads)
        b = torch.arange(n_beads).repeat(f)
        lf = local_frames(cg_pos.reshape(f, n_beads, 3).double(), box.double(), frame, b, fix)
        local = (dev.reshape(-1, 1, 3) @ lf.rotation.transpose(1, 2)).squeeze(1).reshape(f, n_beads, 3)
        for btype in sorted(set(cg_mapping.bead_types)):
            m = torch.tensor([t == btype for t in cg_mapping.bead_types])
            loc = local[:, m].reshape(-1, 3)
            mean = loc.mean(0)
            rows.append([name, btype, "yes" if bool(shared_bead[m].any()) else "no", float(loc.pow(2).sum(-1).mean().sqrt()),
                         f"({mean[0]:.4f}, {mean[1]:.4f}, {mean[2]:.4f})", float(mean.norm()),
                         float(loc.norm(dim=-1).max())])
        rows.append([name, "all", "", float(dev.pow(2).sum(-1).mean().sqrt()), "", "", float(dev.norm(dim=-1).max())])
    return table(["set", "bead type", "shares atoms", "RMSD nm", "mean offset in local frame (x, y, z along fixpoint)",
                  "|mean| nm", "max nm"], rows)


def reach_report(recon_mapping, sets, cg_pos, types):
    fix = fixpoints(recon_mapping)
    home = recon_mapping.home_bead
    rows = []
    for name, (pos, box) in sets.items():
        f, n = pos.shape[:2]
        frame = torch.arange(f).repeat_interleave(n)
        atom_bead = home.repeat(f)
        lf = local_frames(cg_pos.double(), box.double(), frame, atom_bead, fix)
        d = minimum_image(pos.double() - lf.centre.reshape(f, n, 3), box.double()).reshape(-1, 3)
        local = (d.unsqueeze(1) @ lf.rotation.transpose(1, 2)).squeeze(1)  # [F n, 3]
        z, rxy = local[:, 2].abs(), local[:, :2].norm(dim=-1)
        heavy = torch.tensor([not t.startswith("H") for t in types]).repeat(f)
        for label, m in (("heavy", heavy), ("H", ~heavy)):
            rows.append([name, label, float((z[m] > GRID_REACH).double().mean()), float((rxy[m] > GRID_REACH).double().mean()),
                         float((torch.maximum(z[m], rxy[m]) > 0.45).double().mean()), float(z[m].max()), float(rxy[m].max())])
    return table(["set", "atoms", "|z| > 0.525", "r_xy > 0.525", "max(|z|, r_xy) > 0.45", "max |z|", "max r_xy"], rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--top", required=True)
    p.add_argument("--map", required=True, help="reconstruction mapping (home beads, [align])")
    p.add_argument("--cg-map", required=True, help="the mapping that made the CG frames")
    p.add_argument("--ref", required=True)
    p.add_argument("--ref-struct")
    p.add_argument("--gen", action="append", required=True, help="NAME=TRAJ (repeatable)")
    p.add_argument("--cg", required=True)
    p.add_argument("--cg-struct")
    p.add_argument("--frames", default="0:3")
    a = p.parse_args()
    system = load_mapped_system(a.top, a.map, partial=False)
    cg_mapping = load_mapped_system(a.top, a.cg_map, partial=True).mapping
    top, home = system.aa, system.mapping.home_bead
    ref = read_frames(a.ref, a.ref_struct)
    cg = read_frames(a.cg, a.cg_struct)
    sel = frame_range(a.frames, len(ref))
    cg_pos = cg.positions[sel].float()
    sets = {"reference": (ref.positions[sel].float(), ref.boxes[sel].float())}
    for spec in a.gen:
        name, path = spec.split("=", 1)
        g = read_frames(path, a.ref_struct)
        gsel = sel if len(g) == len(ref) else slice(0, len(g))
        sets[name] = (g.positions[gsel].float(), g.boxes[gsel].float())
    n = cg_pos.shape[0]
    print("## Bonds\n" + bonds_report(top, home, sets, n))
    print("\n## Close pairs\n" + close_pairs_report(top, home, sets))
    print("\n## LJ per chain by pair class (kJ/mol; bead = reconstruction bead of --map)\n" + lj_report(top, home, sets, n))
    print("\n## CG deviation (by --cg-map) per bead type\n" + cg_report(cg_mapping, system.mapping, sets, cg_pos, top.masses))
    print("\n## Distance from the home bead in its local frame (grid centres reach +-0.525 nm)\n"
          + reach_report(system.mapping, sets, cg_pos, top.types))


if __name__ == "__main__":
    main()
