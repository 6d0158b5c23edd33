"""Does a written .pdb keep the system? One frame of backmapped sPS (default: the published DBM
frames, ``test_t568/deepbackmap.xtc``) written with the sPS topology, read back by MDAnalysis
(residues, elements, box) and RDKit (bonds from the CONECT records). Issue 21; numbers in
docs/voxel-model.md ("What the output files keep").

    .venv/bin/python scripts/written_pdb_check.py [--frames X.xtc --struct X.gro --top topol.top -o out.pdb]
"""

from __future__ import annotations

import argparse
import collections
import warnings
from pathlib import Path

SPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sps"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", default=SPS / "test_t568" / "deepbackmap.xtc")
    p.add_argument("--struct", default=SPS / "test_t568" / "aa.gro")
    p.add_argument("--top", default=SPS / "topol.top")
    p.add_argument("--frame", type=int, default=0)
    p.add_argument("-o", "--output", default="written_frame.pdb")
    a = p.parse_args()

    import MDAnalysis as mda
    from rdkit import Chem

    from gdbm.data.frame_writer import write_frames
    from gdbm.data.trajectory import read_frames
    from gdbm.topology.gromacs import read_topology

    top = read_topology(a.top, require_parameters=False)
    frames = read_frames(a.frames, a.struct)
    print(f"{a.frames}: {len(frames)} frames of {frames.n_particles} atoms; topology: {top.n_atoms} atoms, "
          f"{top.n_molecules} molecules, {len(top.connectivity)} bonds")
    out = write_frames(a.output, frames.subset([a.frame]), force=True, atoms=top)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = mda.Universe(str(out))
    print(f"MDAnalysis: {u.atoms.n_residues} residues {sorted(set(u.residues.resnames))}, elements "
          f"{dict(collections.Counter(u.atoms.elements))} (equal to the topology's: "
          f"{list(u.atoms.elements) == list(top.elements)}), box {[round(float(v), 3) for v in u.dimensions]}")
    text = out.read_text().splitlines()
    print(f"records: {sum(x.startswith('CRYST1') for x in text)} CRYST1, {sum(x.startswith('CONECT') for x in text)} "
          f"CONECT, {sum(x.startswith('MODEL') for x in text)} MODEL")
    mol = Chem.MolFromPDBFile(str(out), removeHs=False, sanitize=False, proximityBonding=False)
    pairs = {tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))) for b in mol.GetBonds()}
    expected = {tuple(sorted(b)) for b in top.connectivity.tolist()}
    print(f"RDKit: {mol.GetNumAtoms()} atoms, {mol.GetNumBonds()} bonds (the topology's: {pairs == expected}), "
          f"{len(Chem.GetMolFrags(mol))} fragments, elements equal to the topology's: "
          f"{[x.GetSymbol() for x in mol.GetAtoms()] == list(top.elements)}")


if __name__ == "__main__":
    main()
