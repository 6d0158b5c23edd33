#!/usr/bin/env bash
# One device-tool session on a lent GPU (docs/gpu.md), run THERE as one command:
#   run(command="bash scripts/gpu_session.sh", carry=[".whl", ".gpu"], timeout_s=600)
# after `bash scripts/gpu_prepare.sh` here. Within about 9 minutes it
#   1. unpacks the carried packages (.whl/site-cp312.tar.xz) to /tmp/gdbm_site (PYTHONPATH; no pip
#      install of gdbm: the repository root is on PYTHONPATH), prints nvidia-smi -L, torch, CUDA;
#   2. trains the sPS voxel model (configs/sps.yaml, data from .gpu/sps, device cuda) for about 7
#      minutes (timeout --signal=TERM: gdbm ends like Ctrl-C, keeping the last checkpoint, written
#      every 50 updates), resuming .gpu/resume.pt (+ .gpu/resume_log.csv) when carried;
#   3. copies checkpoint.pt, log.csv, config.yaml and a training-curve plot into $OUT;
#   4. benchmarks backmapping one 5832-atom test frame on cuda at the README's sPS settings
#      (2 Gibbs sweeps, 8 candidates) for --precision auto, float32 and bfloat16 (atoms/s, s/frame:
#      $OUT/bench.json, the frame itself $OUT/frame0.gro), then once through `gdbm backmap`;
#   5. prints a summary. Everything it prints is also in $OUT/session.log (7 files in $OUT).
# Every step has a time limit; the whole stays under GDBM_GPU_TOTAL seconds (default 540).
#
# Dry run on a CPU (docs/gpu.md): GDBM_GPU_DRY=1 PY=.venv/bin/python bash scripts/gpu_session.sh
# (device cpu, 1 thread, a few updates of batch 8, no sweeps, 1 candidate; $OUT: a new temp folder);
# GDBM_GPU_EMULATE=1 also refuses every package the device image lacks but the carried ones.
#
# Settings (environment): GDBM_GPU_TOTAL (s, 540), GDBM_GPU_FIT_SECONDS (s of training, 400),
# GDBM_GPU_BENCH_SECONDS (s kept for the benchmark, 110), GDBM_GPU_STEPS (update target, 200000:
# the time limit ends the run), GDBM_GPU_CKPT_EVERY (50), GDBM_GPU_THREADS (16),
# GDBM_GPU_PRECISIONS ("auto float32 bfloat16"), GDBM_GPU_CONFIG (configs/sps.yaml), PY (python3).
set -uo pipefail
T0=$(date +%s)
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
PY=${PY:-python3}
DRY=${GDBM_GPU_DRY:-}
if [ -n "$DRY" ]; then
  DEVICE=cpu; THREADS=${GDBM_GPU_THREADS:-1}; TOTAL=${GDBM_GPU_TOTAL:-900}
  FIT_SECONDS=${GDBM_GPU_FIT_SECONDS:-150}; BENCH_SECONDS=${GDBM_GPU_BENCH_SECONDS:-300}
  STEPS=${GDBM_GPU_STEPS:-6}; CKPT_EVERY=${GDBM_GPU_CKPT_EVERY:-2}
  GIBBS=0; CANDIDATES=1; PRECISIONS=${GDBM_GPU_PRECISIONS:-auto float32}
  OUT=${OUT:-$(mktemp -d /tmp/gdbm_gpu_out.XXXXXX)}
else
  DEVICE=cuda; THREADS=${GDBM_GPU_THREADS:-16}; TOTAL=${GDBM_GPU_TOTAL:-540}
  FIT_SECONDS=${GDBM_GPU_FIT_SECONDS:-400}; BENCH_SECONDS=${GDBM_GPU_BENCH_SECONDS:-110}
  STEPS=${GDBM_GPU_STEPS:-200000}; CKPT_EVERY=${GDBM_GPU_CKPT_EVERY:-50}
  GIBBS=2; CANDIDATES=8; PRECISIONS=${GDBM_GPU_PRECISIONS:-auto float32 bfloat16}
fi
if [ -z "${OUT:-}" ]; then echo "OUT is not set (the device tool sets it; GDBM_GPU_DRY=1 makes one)" >&2; exit 2; fi
mkdir -p "$OUT"
export OUT
exec > >(tee -a "$OUT/session.log") 2>&1
TEE=$!
finish() { exec 1>&- 2>&-; wait "$TEE" 2>/dev/null; }  # session.log complete before $OUT is collected
trap finish EXIT
WORK=${GDBM_GPU_WORK:-/tmp/gdbm_gpu}       # run folder and scratch: not returned
SITE=${GDBM_GPU_SITE:-/tmp/gdbm_site}
DATA=$ROOT/.gpu/sps
RUN=$WORK/run
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=$THREADS
left() { echo $((T0 + TOTAL - $(date +%s))); }
step() { echo; echo "== [$(( $(date +%s) - T0 )) s] $*"; }
STATUS=()
note() { STATUS+=("$1"); echo "-- $1"; }

step "gdbm GPU session: device $DEVICE, out $OUT, budget ${TOTAL} s${DRY:+ (dry run)}"
mkdir -p "$WORK"

step "packages -> $SITE"
TAG=$("$PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
rm -rf "$SITE"; mkdir -p "$SITE"
if ls .whl/*.whl >/dev/null 2>&1; then
  timeout 180 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    || { note "FAILED: pip install of .whl/*.whl"; exit 1; }
elif [ -f ".whl/site-$TAG.tar.xz" ]; then
  if command -v xz >/dev/null; then
    timeout 120 tar -C "$SITE" -xJf ".whl/site-$TAG.tar.xz"
  else
    timeout 120 "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' ".whl/site-$TAG.tar.xz" "$SITE"
  fi || { note "FAILED: unpacking .whl/site-$TAG.tar.xz"; exit 1; }
else
  note "no .whl/site-$TAG.tar.xz (this python is $TAG; run scripts/gpu_prepare.sh here, carry .whl)"
  exit 1
fi
export PYTHONPATH=$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}
echo "unpacked $(du -sh "$SITE" | cut -f1) in $(( $(date +%s) - T0 )) s"
if [ -n "${GDBM_GPU_EMULATE:-}" ]; then
  # dry runs here: make this machine's Python look like the device image (KINDS.md's package
  # list, nothing else from its site-packages; the carried packages only from $SITE)
  mkdir -p "$WORK/emulate"
  cat > "$WORK/emulate/sitecustomize.py" <<'EOF'
import importlib.abc, importlib.machinery, importlib.metadata as md, os, re, sys
KINDS = """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite
lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-ml-py
onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache
protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest
pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex
requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece
sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio
torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions
typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp"""
norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()
SITE = os.environ["GDBM_EMU_SITE"]
carried_dists = {norm(d.metadata["Name"]) for d in md.distributions(path=[SITE])}
allowed = {norm(s) for s in KINDS.split()} | {"gdbm"}
carried, blocked = set(), set()
for mod, dists in md.packages_distributions().items():
    names = {norm(d) for d in dists}
    if names & carried_dists:
        carried.add(mod)
    elif not names & allowed:
        blocked.add(mod)
refused = set()
class DeviceImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if "." in name:
            return None
        if name in carried:
            spec = importlib.machinery.PathFinder.find_spec(name, [SITE])
            if spec is None:
                refused.add(name)
                raise ModuleNotFoundError(f"device image: {name} is not among the carried packages", name=name)
            return spec
        if name in blocked:
            refused.add(name)
            raise ModuleNotFoundError(f"device image: no module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, DeviceImage())
import atexit
atexit.register(lambda: refused and print(f"[device image] refused optional imports: {sorted(refused)}", file=sys.stderr))
EOF
  export PYTHONPATH=$PYTHONPATH:$WORK/emulate GDBM_EMU_SITE=$SITE
  echo "emulating the device image's packages (GDBM_GPU_EMULATE)"
fi

step "machine"
# vesin (neighbour lists on the GPU) dlopens libcudart/libnvrtc by name: let it find torch's own
NVLIB=$(timeout 60 "$PY" -c '
import glob, importlib.util, os, re
spec = importlib.util.find_spec("nvidia")
dirs = {os.path.dirname(f) for base in (spec.submodule_search_locations if spec else [])
        for f in glob.glob(os.path.join(base, "**", "lib*.so*"), recursive=True)
        if re.match(r"lib(nvrtc|cudart)", os.path.basename(f))}
print(":".join(sorted(dirs)))' 2>/dev/null)
if [ -n "$NVLIB" ]; then
  export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$NVLIB
  echo "LD_LIBRARY_PATH += $NVLIB"
fi
timeout 20 nvidia-smi -L 2>&1 || echo "(no nvidia-smi)"
timeout 120 "$PY" - "$DEVICE" <<'EOF' || { note "FAILED: imports (see above)"; exit 1; }
import sys, platform
import torch
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}, "
      f"CUDA {torch.version.cuda}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"GPU 0: {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, "
          f"capability {p.major}.{p.minor}, bf16 supported: {torch.cuda.is_bf16_supported()}")
elif sys.argv[1] == "cuda":
    sys.exit("no CUDA device: torch.cuda.is_available() is False")
import gdbm, MDAnalysis, pydantic, rdkit, ase, vesin_torch
print(f"gdbm {gdbm.__version__} from {gdbm.__file__}; MDAnalysis {MDAnalysis.__version__}, pydantic {pydantic.__version__}, "
      f"rdkit {rdkit.__version__}, ase {ase.__version__}")
if torch.cuda.is_available():  # vesin loads the CUDA runtime and NVRTC itself: check its pairs against the CPU's
    from vesin_torch import NeighborList
    g = torch.Generator().manual_seed(0)
    pos = torch.rand(500, 3, generator=g, dtype=torch.float64) * 3.0
    box = torch.eye(3, dtype=torch.float64) * 3.0
    n = {}
    for dev in ("cpu", "cuda"):
        try:
            i, j, s = NeighborList(cutoff=0.7, full_list=False).compute(pos.to(dev), box.to(dev), True, "ijS")
            n[dev] = int(i.shape[0])
        except Exception as err:  # noqa: BLE001
            n[dev] = f"{type(err).__name__}: {err}"
    ok = n["cpu"] == n["cuda"]
    print(f"vesin-torch neighbour list on cuda: {'ok' if ok else 'DIFFERS OR FAILS'} ({n})")
EOF

step "config: ${GDBM_GPU_CONFIG:-configs/sps.yaml} with data from .gpu/sps"
CONFIG=$WORK/sps_gpu.yaml
"$PY" - "${GDBM_GPU_CONFIG:-configs/sps.yaml}" "$DATA" "$CONFIG" "$CKPT_EVERY" "$DRY" <<'EOF' || { note "FAILED: config"; exit 1; }
import sys, yaml
src, data, dst, every, dry = sys.argv[1:]
c = yaml.safe_load(open(src))
c["data"].update(topology=f"{data}/topol.top", mapping=f"{data}/PS1.map",
                 aa=f"{data}/train_t568/aa", cg=f"{data}/train_t568/cg")
t = c.setdefault("training", {})
t.update(checkpoint_every=int(every), keep_every=None)  # kept copies would not come back (8 files)
if dry:
    t.update(batch_size=8, pretrain_steps=2, log_every=1)
yaml.safe_dump(c, open(dst, "w"), sort_keys=False)
print(open(dst).read())
EOF

step "train on $DEVICE"
mkdir -p "$RUN"
MODE=--force
if [ -f .gpu/resume.pt ]; then
  rm -f "$RUN"/checkpoint*.pt "$RUN/log.csv"
  cp .gpu/resume.pt "$RUN/checkpoint.pt"
  [ -f .gpu/resume_log.csv ] && cp .gpu/resume_log.csv "$RUN/log.csv"
  MODE=--resume
  echo "resuming the carried .gpu/resume.pt"
fi
fit_budget=$(( $(left) - BENCH_SECONDS ))
[ "$fit_budget" -gt "$FIT_SECONDS" ] && fit_budget=$FIT_SECONDS
if [ "$fit_budget" -lt 30 ]; then
  note "no time left to train (${fit_budget} s)"
else
  echo "training for at most $fit_budget s (checkpoint every $CKPT_EVERY updates, target $STEPS)"
  fit_start=$(date +%s)
  timeout --signal=TERM --kill-after=30 "$fit_budget" \
    "$PY" -m gdbm --threads "$THREADS" fit --config "$CONFIG" -o "$RUN" --device "$DEVICE" --steps "$STEPS" $MODE
  rc=$?
  case $rc in
    0) note "training reached its target ($STEPS updates) in $(( $(date +%s) - fit_start )) s" ;;
    124|143) note "training stopped at its time limit after $(( $(date +%s) - fit_start )) s (expected)" ;;
    *) note "FAILED: gdbm fit exited $rc" ;;
  esac
fi

step "run folder -> \$OUT"
CKPT=""
if [ -f "$RUN/checkpoint.pt" ]; then
  cp "$RUN/checkpoint.pt" "$OUT/checkpoint.pt"; CKPT=$RUN/checkpoint.pt
fi
[ -f "$RUN/log.csv" ] && cp "$RUN/log.csv" "$OUT/log.csv"
[ -f "$RUN/config.yaml" ] && cp "$RUN/config.yaml" "$OUT/config.yaml"
plot=$(ls "$RUN"/*.png 2>/dev/null | head -1)
if [ -n "$plot" ]; then
  cp "$plot" "$OUT/training.png"   # gdbm's own plot of the run, where it writes one
elif [ -f "$RUN/log.csv" ]; then
  timeout 60 "$PY" - "$RUN/log.csv" "$OUT/training.png" <<'EOF' || echo "(no plot)"
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = list(csv.DictReader(open(sys.argv[1])))
keys = [k for k in ("supervised_mse", "wasserstein", "generator_loss", "critic_loss", "gradient_penalty",
                    "energy_bond", "energy_angle", "energy_lj") if any(r.get(k) for r in rows)]
fig, axes = plt.subplots(len(keys), 1, figsize=(7, 1.8 * len(keys)), sharex=True, squeeze=False)
for ax, k in zip(axes[:, 0], keys):
    pts = [(int(r["step"]), float(r[k])) for r in rows if r.get(k)]
    ax.plot(*zip(*pts), lw=0.8)
    ax.set_ylabel(k, fontsize=8)
    if k.startswith("energy"):
        ax.set_yscale("log" if min(v for _, v in pts) > 0 else "symlog")
axes[-1, 0].set_xlabel("generator update")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=90)
print(f"plotted {len(rows)} log rows: {', '.join(keys)}")
EOF
fi
if [ -n "$CKPT" ]; then
  timeout 60 "$PY" - "$CKPT" <<'EOF' || echo "(checkpoint unreadable)"
import sys, torch
ck = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
print(f"checkpoint at update {ck['step']}, {ck['seconds']:.0f} s of training in all")
EOF
else
  note "no checkpoint: benchmarking the shipped sps-voxel instead"
fi

step "benchmark: backmapping 1 test frame on $DEVICE (gibbs $GIBBS, candidates $CANDIDATES; $PRECISIONS)"
bench_budget=$(( $(left) - 10 ))
if [ "$bench_budget" -lt 20 ]; then
  note "no time left to benchmark"
else
  timeout --signal=TERM --kill-after=10 "$bench_budget" "$PY" - "${CKPT:-sps-voxel}" "$DATA" "$DEVICE" "$GIBBS" "$CANDIDATES" \
    "$(( T0 + TOTAL - 10 ))" "$OUT" $PRECISIONS <<'EOF'
import json, os, sys, time
import torch
import gdbm

ckpt, data, device, gibbs, candidates, deadline, out = sys.argv[1:8]
precisions = sys.argv[8:]
gibbs, candidates, deadline = int(gibbs), int(candidates), float(deadline)
cg = gdbm.read_frames(f"{data}/test_t568/cg.xtc", f"{data}/test_t568/cg.gro").subset(slice(0, 1))
result = {"checkpoint": ckpt, "device": device, "gibbs": gibbs, "candidates": candidates, "runs": [],
          "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None, "torch": torch.__version__}

def save():
    tmp = f"{out}/bench.json.part"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, f"{out}/bench.json")

def sync():
    if device.startswith("cuda"):
        torch.cuda.synchronize()

last = None  # seconds of the last timed frame: whether another fits before the deadline
resolved = {}
for precision in precisions:
    config = gdbm.SamplerConfig(n_gibbs=gibbs, candidates=candidates, precision=precision)
    t = time.perf_counter()
    sampler = gdbm.Backmapper.from_checkpoint(ckpt, f"{data}/topol.top", f"{data}/PS1.map", config, device=device)
    load = time.perf_counter() - t
    run = {"precision": precision, "resolved": sampler.precision, "load_s": round(load, 2)}
    result["runs"].append(run)
    if sampler.precision in resolved:
        run["same_as"] = resolved[sampler.precision]
        print(f"{precision}: the same arithmetic as {resolved[sampler.precision]} (measured there)")
        save()
        continue
    resolved[sampler.precision] = precision
    for kind in ("cold", "warm"):  # cold: first frame of this sampler (kernels, caches); warm: the same again
        if last is not None and time.time() + 1.3 * last > deadline:
            run[f"{kind}_skipped"] = "no time left"
            print(f"{precision} {kind}: skipped, no time left")
            continue
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        sync(); t = time.perf_counter()
        aa = sampler.backmap(cg, progress=False)
        sync(); s = time.perf_counter() - t
        last = s
        n = aa.positions.shape[1]
        run.update({f"{kind}_s_per_frame": round(s, 3), f"{kind}_atoms_per_s": round(n / s, 1), "atoms": n})
        if device.startswith("cuda"):
            run[f"{kind}_peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
        print(f"{precision} ({sampler.precision}) {kind}: {s:.2f} s/frame, {n / s:.0f} atoms/s")
        if precision == precisions[0]:  # the frame itself, to look at here (residues and elements kept)
            gdbm.write_frames(f"{out}/frame0.gro", aa, force=True, atoms=sampler.system.aa)
        save()
save()
EOF
  rc=$?
  case $rc in
    0) note "benchmark done" ;;
    124|143) note "benchmark stopped at its time limit (bench.json keeps what was measured)" ;;
    *) note "FAILED: benchmark exited $rc (bench.json keeps what was measured)" ;;
  esac
fi

# the user-facing command once, end to end (process start, reading, model load, one frame, writing)
if [ "$(left)" -gt "${GDBM_GPU_CLI_SECONDS:-60}" ]; then
  step "gdbm backmap --device $DEVICE --precision auto, one frame, end to end"
  cli_start=$(date +%s.%N)
  timeout --signal=TERM --kill-after=10 $(( $(left) - 5 )) "$PY" -m gdbm --threads "$THREADS" backmap \
    --checkpoint "${CKPT:-sps-voxel}" --top "$DATA/topol.top" --map "$DATA/PS1.map" \
    --cg "$DATA/test_t568/cg.xtc" --cg-struct "$DATA/test_t568/cg.gro" --frames 0:1 \
    --gibbs "$GIBBS" --candidates "$CANDIDATES" --device "$DEVICE" --precision auto -o "$WORK/cli_frame0.gro" --force
  rc=$?
  cli_s=$(awk -v a="$cli_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  [ "$rc" -eq 0 ] && note "gdbm backmap (CLI) wrote one frame in $cli_s s end to end" \
                  || note "gdbm backmap (CLI) exited $rc after $cli_s s"
  [ -f "$OUT/bench.json" ] && "$PY" - "$OUT/bench.json" "$rc" "$cli_s" <<'EOF'
import json, sys
path, rc, s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
b = json.load(open(path)); b["cli_end_to_end_s"] = s if rc == 0 else None; b["cli_exit"] = rc
json.dump(b, open(path, "w"), indent=1)
EOF
else
  echo "(no time for the end-to-end gdbm backmap run)"
fi

step "summary"
for s in "${STATUS[@]}"; do echo "  $s"; done
[ -f "$OUT/bench.json" ] && "$PY" - "$OUT/bench.json" <<'EOF'
import json, sys
b = json.load(open(sys.argv[1]))
print(f"  backmapping on {b['device']} ({b.get('gpu') or 'cpu'}), gibbs {b['gibbs']}, candidates {b['candidates']}:")
for r in b["runs"]:
    if "same_as" in r:
        print(f"    {r['precision']:>8}: as {r['same_as']}")
        continue
    w = r.get("warm_s_per_frame"); c = r.get("cold_s_per_frame")
    print(f"    {r['precision']:>8} ({r['resolved']}): warm {w} s/frame, {r.get('warm_atoms_per_s')} atoms/s; "
          f"cold {c} s/frame")
if b.get("cli_end_to_end_s") is not None:
    print(f"    gdbm backmap end to end: {b['cli_end_to_end_s']} s")
EOF
echo "  \$OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
echo "  $(( $(date +%s) - T0 )) s in all"
case "${STATUS[*]}" in *FAILED*) exit 1 ;; esac
exit 0
