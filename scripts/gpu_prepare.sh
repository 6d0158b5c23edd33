#!/usr/bin/env bash
# Prepare the payload of scripts/gpu_session.sh for the device tool (run HERE, before a session
# that has a GPU; docs/gpu.md). Writes two folders that git ignores and the tool carries:
#   .whl/  site-cp312.tar.xz: the Python packages gdbm needs that the device image lacks,
#          installed here for the device's CPython 3.12 (manylinux x86-64 wheels), xz-compressed
#   .gpu/  sps/: the sPS data of the run (training frames, topology, maps, first test frames)
# and checks that the working tree plus both folders stay under the tool's 64 MiB.
#
#   bash scripts/gpu_prepare.sh                         # data + packages + size check
#   GDBM_SPS_DATA=/path/to/sps bash scripts/gpu_prepare.sh
#   GDBM_GPU_NO_WHEELS=1 bash scripts/gpu_prepare.sh    # data + size check only
#   GDBM_GPU_PYVER=3.11 bash scripts/gpu_prepare.sh     # packages for this machine's .venv (dry run here)
#
# A checkpoint to continue from goes to .gpu/resume.pt (its log to .gpu/resume_log.csv):
# gpu_session.sh then resumes that run instead of starting one (docs/gpu.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
SPS=${GDBM_SPS_DATA:-$ROOT/../shared/data/sps}
LIMIT=$((64 * 1024 * 1024))

# What the device image (KINDS.md: python 3.12, torch 2.11, numpy, scipy, matplotlib, tqdm, pyyaml,
# torch-geometric, e3nn, filelock, joblib, threadpoolctl, packaging, msgpack, pillow) lacks for
# `gdbm fit` and `gdbm backmap` of sPS, pinned to the versions this repository's .venv is tested
# with. Found by running both with the image's package list enforced (docs/gpu.md): gdbm imports
# pydantic (configs), MDAnalysis (trajectories), vesin-torch (neighbour lists), rdkit + ase
# (gdbm.topology imports them: element table, converters). Their needs the image lacks:
# pydantic-core, annotated-types, typing-inspection, typing-extensions (pydantic wants a recent
# one), mmtf-python, mda-xdrlib, vesin. Not carried: openmm, parmed (no MD there; gdbm reads
# .xtc without OpenMM), GridDataFormats + mrcfile (MDAnalysis wants them for density grids only).
WHEELS=(
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
  typing-extensions==4.16.0
  MDAnalysis==2.11.0 mmtf-python==1.1.3 mda-xdrlib==0.2.0
  vesin==0.6.2 vesin-torch==0.6.2 ase==3.29.0 rdkit==2026.9.1
)

echo "== data from $SPS -> .gpu/sps"
test -f "$SPS/topol.top" || { echo "no sPS data at $SPS (set GDBM_SPS_DATA)" >&2; exit 1; }
mkdir -p .gpu/sps/train_t568/aa .gpu/sps/train_t568/cg .gpu/sps/test_t568
for f in topol.top topol_PS1.itp PS1.map PS1_cg.itp PS1_cg_fritz.map; do
  cp -f "$SPS/$f" .gpu/sps/
done
cp -f "$SPS"/train_t568/aa/*.gro .gpu/sps/train_t568/aa/
cp -f "$SPS"/train_t568/cg/*.gro .gpu/sps/train_t568/cg/
# the first 3 held-out frames (CG input + AA reference) in small .xtc files beside their .gro
# (positions as in the published .xtc, bit for bit: same precision)
cp -f "$SPS/test_t568/cg.gro" "$SPS/test_t568/aa.gro" .gpu/sps/test_t568/
OMP_NUM_THREADS=1 "$PY" - "$SPS/test_t568" .gpu/sps/test_t568 3 <<'EOF'
import sys, warnings
warnings.filterwarnings("ignore")
import MDAnalysis as mda
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name in ("cg", "aa"):
    u = mda.Universe(f"{src}/{name}.gro", f"{src}/{name}.xtc")
    with mda.Writer(f"{dst}/{name}.xtc", u.atoms.n_atoms) as w:
        for ts in u.trajectory[:n]:
            w.write(u.atoms)
    print(f"  {name}.xtc: {min(n, len(u.trajectory))} frames, {u.atoms.n_atoms} particles")
EOF
rm -f .gpu/sps/test_t568/.*_offsets.*

if [ -z "${GDBM_GPU_NO_WHEELS:-}" ]; then
  # The same packages as .whl files would not fit the 64 MiB (rdkit's wheel alone is 32 MB, all
  # of them 55 MB); installed and xz-compressed they make about 38 MB. gpu_session.sh unpacks the
  # tarball to /tmp and puts it on PYTHONPATH (loose .whl/*.whl it would pip-install instead).
  PYVER=${GDBM_GPU_PYVER:-3.12}   # the device's python3
  TAG=cp${PYVER/./}
  CACHE=${GDBM_GPU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gdbm-gpu}/wheels-$TAG
  PLAT=(--only-binary=:all: --python-version "$PYVER" --implementation cp
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
  echo "== wheels ($TAG, manylinux x86-64) -> $CACHE"
  mkdir -p "$CACHE" .whl
  "$PY" -m pip download -q --no-deps "${PLAT[@]}" -d "$CACHE" "${WHEELS[@]}" 2>&1 | { grep -v "is ignored" || true; }
  # exactly one file per listed name==version (the cache may hold others)
  FILES=()
  while IFS= read -r f; do FILES+=("$f"); done < <("$PY" -c '
import os, re, sys
norm = lambda s: re.sub(r"[-_.]+", "_", s).lower()
cache = sys.argv[1]
files = os.listdir(cache)
for spec in sys.argv[2:]:
    name, version = spec.split("==")
    hits = [f for f in files if f.endswith(".whl") and norm(f.split("-")[0]) == norm(name) and f.split("-")[1] == version]
    if len(hits) != 1:
        sys.exit(f"{spec}: {len(hits)} wheels in {cache}: {hits}")
    print(os.path.join(cache, hits[0]))
' "$CACHE" "${WHEELS[@]}")
  [ "${#FILES[@]}" -eq "${#WHEELS[@]}" ] || { echo "wheels missing (see above)" >&2; exit 1; }
  MANIFEST=$(for f in "${FILES[@]}"; do echo "$(sha256sum "$f" | cut -c1-64)  $(basename "$f")"; done)
  rm -f .whl/*.whl  # one form only: loose wheels and the tarball would both travel
  for old in .whl/site-cp*.tar.xz; do  # one Python's tarball travels, not two
    if [ -e "$old" ] && [ "$old" != ".whl/site-$TAG.tar.xz" ]; then rm -f "$old" "${old%.tar.xz}.manifest"; fi
  done
  if [ -f ".whl/site-$TAG.tar.xz" ] && [ "$MANIFEST" = "$(cat ".whl/site-$TAG.manifest" 2>/dev/null)" ]; then
    echo "  .whl/site-$TAG.tar.xz is up to date"
  else
    TMP=$(mktemp -d)
    trap 'rm -rf "$TMP"' EXIT
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "${PLAT[@]}" --target "$TMP/site" "${FILES[@]}"
    rm -rf "$TMP/site/bin"  # console scripts naming this machine's interpreter
    echo "  compressing $(du -sh "$TMP/site" | cut -f1) (xz, one thread: a few minutes)"
    tar -C "$TMP/site" -cf - . | nice -n 10 xz -6 -T1 > ".whl/site-$TAG.tar.xz.part"
    mv ".whl/site-$TAG.tar.xz.part" ".whl/site-$TAG.tar.xz"
    printf '%s\n' "$MANIFEST" > ".whl/site-$TAG.manifest"
  fi
  ls -l .whl | sed 's/^/  /'
fi

echo "== what travels (tracked + untracked-not-ignored files of the working tree, and carry .whl .gpu)"
tree=$(git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  if [ -f "$f" ] && [ ! -L "$f" ]; then stat -c %s -- "$f"; fi; done | awk '{s+=$1} END {print s+0}')
whl=0; [ -d .whl ] && whl=$(du -sb .whl | cut -f1)
gpu=$(du -sb .gpu | cut -f1)
total=$((tree + whl + gpu))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "  working tree $(mib "$tree"), .whl $(mib "$whl"), .gpu $(mib "$gpu") (resume.pt included if there): total $(mib "$total") of $(mib "$LIMIT")"
if [ "$total" -ge "$LIMIT" ]; then
  echo "  over the device tool's 64 MiB: drop something before calling run" >&2
  exit 1
fi
if [ ! -f .whl/site-cp312.tar.xz ] && ! ls .whl/*.whl >/dev/null 2>&1; then
  echo "  note: no .whl/site-cp312.tar.xz: the device's Python 3.12 would lack gdbm's packages"
fi
echo "ready: run(command='bash scripts/gpu_session.sh', carry=['.whl', '.gpu'], timeout_s=600)  (docs/gpu.md)"
