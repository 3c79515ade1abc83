#!/usr/bin/env bash
# The GPU check of pdekit, in one go: the CUDA tests, the solver's bandwidth roofline, short FNO
# trainings from Zarr and from the online generator (samples/s, waiting, peak memory), and PINN seeds
# one after another against one batched ensemble. Two opt-in parts, each a call of its own (up to 7 minutes),
# train the Galerkin transformer's Burgers row of benchmarks/papers/ (100 epochs, 4-5 h on a 2-core CPU):
# fourier_burgers (the authors' README figure, about 1e-3) and galerkin_burgers.
# Writes one results file, $OUT/gpu_check.md; each part runs under its own timeout and a failing
# part does not stop the others. Worst case (every default part at its timeout) is 10 minutes.
#
#   bash benchmarks/gpu_check.sh                   # on a CUDA machine, from the repository root
#   bash benchmarks/gpu_check.sh --cpu-dry-run     # every part at tiny size on the CPU: the plumbing only
#   bash benchmarks/gpu_check.sh --fetch-wheels    # where pip reaches PyPI: the wheels the GPU image lacks
#   GPU_CHECK_PARTS=tests,solver bash benchmarks/gpu_check.sh    # a subset, e.g. to rerun
#   GPU_CHECK_PARTS=env,fourier_burgers bash benchmarks/gpu_check.sh   # the Fourier-type Burgers row, 100 epochs
#
# Environment: OUT (results folder, default outputs/gpu_check), PYTHON (default python3),
# GPU_CHECK_PARTS (comma-separated subset of env,tests,solver,training,pinn,fourier_burgers,galerkin_burgers;
# default env,tests,solver,training,pinn).
#
# The GPU image's python3 has torch with CUDA but no zarr, neuraloperator or tomli_w (its package
# list: /work/.library/device/KINDS.md). Nothing can be downloaded there, so the one install is of
# wheels carried in build/gpu_wheels (fetched beforehand with --fetch-wheels): they go to a folder
# of their own on PYTHONPATH, in seconds, with no dependency resolution.

set -u
cd "$(dirname "$0")/.." || exit 2

MODE=gpu
case "${1:-}" in
  "") ;;
  --cpu-dry-run) MODE=dry ;;
  --fetch-wheels) MODE=fetch ;;
  *) echo "gpu_check: unknown option '$1'; expected --cpu-dry-run or --fetch-wheels" >&2; exit 2 ;;
esac
[ "${GPU_CHECK_CPU_DRY_RUN:-0}" = 1 ] && MODE=dry

PY=${PYTHON:-python3}
WHEELS=${GPU_CHECK_WHEELS:-build/gpu_wheels}
# Pinned to the versions pdekit is developed against (.venv); pure Python except numcodecs and google-crc32c (cp312).
WHEEL_PINS="zarr==3.1.6 numcodecs==0.16.6 donfig==0.8.1.post1 google-crc32c==1.9.0 neuraloperator==2.0.0 tensorly==0.10.0 tensorly-torch==0.5.0 tomli_w==1.2.0"

if [ "$MODE" = fetch ]; then
  mkdir -p "$WHEELS"
  exec "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEELS" $WHEEL_PINS
fi

OUT=${OUT:-outputs/gpu_check}
mkdir -p "$OUT"
RESULTS="$OUT/gpu_check.md"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# ----- no CUDA: say so in one line, unless this is the dry run -----------------------------------
if [ "$MODE" = gpu ]; then
  if ! probe=$("$PY" -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())' 2>&1); then
    echo "gpu_check: '$PY' cannot import torch ($(echo "$probe" | tail -1)); set PYTHON to the interpreter that has torch with CUDA" | tee "$RESULTS" >&2
    exit 3
  fi
  read -r torch_version cuda_version available <<<"$probe"
  if [ "$available" != True ]; then
    echo "gpu_check: no CUDA device: torch $torch_version (CUDA build: $cuda_version) sees none; run this on a GPU machine, or pass --cpu-dry-run to check the plumbing on the CPU" | tee "$RESULTS" >&2
    exit 3
  fi
else
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fi

# ----- the packages the image lacks ------------------------------------------------------------
install_note="none needed"
if ! "$PY" -c 'import zarr, neuralop, tomli_w' 2>/dev/null; then
  if compgen -G "$WHEELS/*.whl" >/dev/null; then
    SITE=$WORK/site
    if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl >"$WORK/pip.log" 2>&1; then
      export PYTHONPATH="$PYTHONPATH:$SITE"
      install_note="installed $(ls "$WHEELS" | wc -l) carried wheels from $WHEELS into $SITE"
    else
      install_note="FAILED to install the wheels in $WHEELS: $(tail -1 "$WORK/pip.log")"
    fi
  else
    install_note="MISSING zarr/neuraloperator/tomli_w and no wheels in $WHEELS: run 'bash benchmarks/gpu_check.sh --fetch-wheels' where pip reaches PyPI and carry $WHEELS"
  fi
fi

# ----- the parts -----------------------------------------------------------------------------------
if [ "$MODE" = gpu ]; then
  SOLVER_ARGS="--device cuda --shape 256 --batch 64 --t-end 0.5 --repeats 3"  # ~55 CFL steps per timed solve
  TRAINING_ARGS="--device cuda"
  PINN_ARGS="--device cuda --members 8 --iterations 300 --repeats 3"
  BURGERS_ARGS="--device cuda"  # the row's own setting: 1024 + 100 pairs, 100 epochs
else
  SOLVER_ARGS="--device cpu --quick --repeats 1"
  TRAINING_ARGS="--device cpu --tiny"
  PINN_ARGS="--device cpu --members 2 --iterations 10 --repeats 1"
  BURGERS_ARGS="--device cpu --epochs 1 --train 8 --test 4"
fi
PARTS=${GPU_CHECK_PARTS:-env,tests,solver,training,pinn}  # the two Burgers parts only when named
# One hung test (a deadlocked producer, say) must not take the rest of the tests with it.
TEST_ARGS=()
"$PY" -c "import pytest_timeout" 2>/dev/null && TEST_ARGS=(--timeout=90)

declare -a NAMES STATUS WALL
run_part() {  # name, timeout in seconds, command...
  local name=$1 limit=$2
  shift 2
  case ",$PARTS," in *",$name,"*) ;; *) return ;; esac
  echo "gpu_check: $name (at most ${limit} s) ..." >&2
  local started=$SECONDS rc
  timeout --kill-after=10 "$limit" "$@" >"$WORK/$name.log" 2>&1
  rc=$?
  local status="ok"
  [ $rc -ne 0 ] && status="FAILED (exit $rc)"
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && status="TIMED OUT after ${limit} s"
  NAMES+=("$name"); STATUS+=("$status"); WALL+=($((SECONDS - started)))
  echo "gpu_check: $name: $status in $((SECONDS - started)) s" >&2
}

environment() {
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,clocks.sm,clocks.mem --format=csv
  "$PY" - <<'EOF'
import importlib, platform, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device: {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, compute capability {p.major}.{p.minor}")
for name in ("numpy", "zarr", "numcodecs", "xarray", "neuralop", "tensorly", "tltorch", "scipy", "pandas"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')} ({module.__file__})")
    except Exception as error:  # report, do not stop: the other parts say what it breaks
        print(f"{name}: NOT IMPORTABLE ({error!r})")
EOF
}

export -f environment
export PY
run_part env 30 bash -c environment
run_part tests 180 "$PY" -m pytest -q -rA -p no:cacheprovider "${TEST_ARGS[@]}" tests/test_cuda.py
run_part solver 90 "$PY" benchmarks/solver_throughput.py $SOLVER_ARGS
run_part training 150 "$PY" benchmarks/gpu_training.py $TRAINING_ARGS
run_part pinn 150 "$PY" benchmarks/pinn_ensemble.py $PINN_ARGS
run_part fourier_burgers 420 "$PY" benchmarks/papers/galerkin_burgers.py --attention fourier --run "$WORK/fourier_burgers" $BURGERS_ARGS
run_part galerkin_burgers 420 "$PY" benchmarks/papers/galerkin_burgers.py --attention galerkin --run "$WORK/galerkin_burgers" $BURGERS_ARGS

# ----- the results file: summary and key figures first, then every part's output ---------------------
{
  echo "# pdekit GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), mode: $MODE, host ${HOSTNAME:-unknown}"
  echo
  echo "Wheels: $install_note"
  echo
  echo "| part | status | wall s |"
  echo "|---|---|---|"
  for i in "${!NAMES[@]}"; do echo "| ${NAMES[$i]} | ${STATUS[$i]} | ${WALL[$i]} |"; done
  echo
  echo "## Key figures"
  echo
  echo "Targets: solver >= 50% of the bandwidth roofline at 256² x 64 in float32; online waiting < 5%;"
  echo "AMP loss of every model finite and within 10% of float32's after the same steps."
  echo
  [ -f "$WORK/tests.log" ] && { grep -E '^(FAILED|ERROR) |^=* ?[0-9]+ (passed|failed|skipped|error)' "$WORK/tests.log" | tail -40; grep -E 'CPU vs CUDA|epoch losses' "$WORK/tests.log"; echo; }
  [ -f "$WORK/solver.log" ] && { grep -A3 -E '^\| grid \| batch \| float32' "$WORK/solver.log"; echo; }
  [ -f "$WORK/training.log" ] && { grep -E '^\|' "$WORK/training.log"; echo; }
  [ -f "$WORK/pinn.log" ] && { grep -E '^\||speed-up|largest' "$WORK/pinn.log"; echo; }
  for part in fourier_burgers galerkin_burgers; do
    [ -f "$WORK/$part.log" ] && { grep -E '^data:|transformer, batch' "$WORK/$part.log"; echo; }
  done
  for i in "${!NAMES[@]}"; do
    echo "## ${NAMES[$i]}: ${STATUS[$i]}, ${WALL[$i]} s"
    echo
    echo '```'
    tail -c 60000 "$WORK/${NAMES[$i]}.log"
    echo '```'
    echo
  done
} >"$RESULTS"

# The end of stdout is what a remote runner shows: the summary and key figures.
awk '/^## (env|tests|solver|training|pinn|fourier_burgers|galerkin_burgers):/ { exit } { print }' "$RESULTS"
echo
for i in "${!NAMES[@]}"; do echo "${NAMES[$i]}: ${STATUS[$i]} (${WALL[$i]} s)"; done
echo "results: $RESULTS"
for status in "${STATUS[@]}"; do [ "$status" = ok ] || exit 1; done
exit 0
