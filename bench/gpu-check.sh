#!/usr/bin/env bash
# The WebGPU backend measured on a real GPU, in one call on a bare Linux x86-64 machine with an
# NVIDIA GPU (no Node, no Deno, no network, perhaps no Vulkan loader; python3 with CUDA PyTorch):
# unpack what bench/gpu-kit.sh put in .devicekit/, find the adapter (a software one fails the
# check), then time under Deno `bench/main.ts --backend webgpu` (sgemm 1024³ and 4096³ against
# the GPU's fp32 peak, ResNet-20 at batch 64 and ResNet-18 with the CIFAR stem at batch 32:
# training and inference img/s, dispatches and submits per step), the same workloads in PyTorch
# on the same GPU (bench/torch_ref.py --device cuda) for the ratios, the GPU time of every
# kernel of a training step of both models (bench/gpu_profile.ts: timestamp queries), the host
# time of a ResNet-20 step by layer (bench/gpu_host.ts), the GEMM kernel variants on sgemm and
# ResNet-20's convolution shapes (bench/gpu_gemm_variants.ts),
# and the WebGPU parity test (test/webgpu.test.ts: every kernel against the CPU backend), all
# inside a wall-time budget.
# Writes $OUT/gpu-check.json (bench/gpu_check_report.py) and $OUT/gpu-check.log.
#
# Run HERE first, in the checkout the call sends: bench/gpu-kit.sh. The device call (the `run`
# tool), whose command and carry list are:
#   command:   bash bench/gpu-check.sh
#   carry:     [".devicekit"]
#   timeout_s: 300
# The script's own budget (BUDGET_S, 225 s) ends it well before that; each stage is cut short
# at what the budget has left, and the JSON is rewritten after every stage, so a stage that
# hangs or is killed leaves the others' figures.
#
# Exit status: 0 every stage ran; 1 some stage failed, timed out or was skipped (see the JSON's
# stages); 2 it could not start (no kit, Deno does not run, no hardware adapter).
# Environment, for a dry run elsewhere (defaults are the device's): OUT (required);
# ALLOW_FALLBACK=1 accepts a software adapter (lavapipe), SIZES (1024,4096), BATCH_RESNET20
# (64), BATCH_RESNET18 (32), REPEATS (20), BUDGET_S (225), TORCH_PYTHON (python3),
# TORCH_DEVICE (cuda), VARIANTS_S (45: the GEMM variants bench's own budget), PEAK_GFLOPS and
# PEAK_SOURCE (instead of the datasheet table),
# WEBGPU_BACKEND (vulkan: Deno's wgpu would otherwise fall back to OpenGL silently),
# NVIDIA_ROOT (/usr/local/nvidia: the driver's folder, with its Vulkan driver file).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
: "${OUT:?set OUT to the folder for gpu-check.json and gpu-check.log}"
mkdir -p "$OUT"
SECONDS=0
export BUDGET_S=${BUDGET_S:-225} SIZES=${SIZES:-1024,4096} REPEATS=${REPEATS:-20}
export BATCH_RESNET20=${BATCH_RESNET20:-64} BATCH_RESNET18=${BATCH_RESNET18:-32}
export ALLOW_FALLBACK=${ALLOW_FALLBACK:-0} TORCH_DEVICE=${TORCH_DEVICE:-cuda} TORCH_PYTHON=${TORCH_PYTHON:-python3}
export PEAK_GFLOPS=${PEAK_GFLOPS:-} PEAK_SOURCE=${PEAK_SOURCE:-}
export DENO_WEBGPU_BACKEND=${WEBGPU_BACKEND:-vulkan}
RESERVE_S=15     # kept back for the report at the end
MIN_STAGE_S=20   # a stage given less than this is skipped, not started
KIT=.devicekit
WORK=$(mktemp -d /tmp/gpucheck.XXXXXX)
export WORK
exec > >(tee -a "$OUT/gpu-check.log") 2>&1
log_pid=$!

say() { echo "[gpu-check ${SECONDS}s] $*"; }
report() { ELAPSED_S=$SECONDS python3 bench/gpu_check_report.py "$WORK" "$OUT/gpu-check.json" "$@"; }
finish() {
  report --table
  rm -rf "$WORK/bin" "$WORK/deno_dir" # the 95 MB binary; the stage outputs stay
  exec >&- 2>&-
  wait "$log_pid" 2>/dev/null
  exit "$1"
}
abort() {
  say "FAILED: $*"
  echo "$*" >"$WORK/abort.txt"
  finish 2
}

# stage NAME CAP_S COMMAND...: COMMAND's stdout to $WORK/NAME.out, its stderr to the log,
# under min(CAP_S, what the budget has left); how it ended goes to $WORK/stages.tsv.
stage() {
  local name=$1 cap=$2 left limit rc=0 status t0
  shift 2
  left=$((BUDGET_S - SECONDS - RESERVE_S))
  limit=$((cap < left ? cap : left))
  if ((limit < MIN_STAGE_S)); then
    say "== $name: skipped, ${left}s of the budget left"
    printf '%s\tskipped (budget)\t0\t%s\t\n' "$name" "$limit" >>"$WORK/stages.tsv"
    report
    return 1
  fi
  say "== $name (at most ${limit}s): $*"
  t0=$SECONDS
  timeout -k 10 "$limit" "$@" >"$WORK/$name.out" || rc=$?
  if ((rc == 0)); then status=ok; elif ((rc == 124 || rc == 137)); then status="timed out"; else status=failed; fi
  say "== $name: $status (exit $rc) in $((SECONDS - t0))s"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - t0))" "$limit" "$rc" >>"$WORK/stages.tsv"
  report
  return "$rc"
}

say "start $(date -u +%FT%TZ) on $(uname -srm), $(nproc) CPUs; budget ${BUDGET_S}s; work folder $WORK"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.sm --format=csv,noheader >"$WORK/gpu.csv" 2>&1
  say "nvidia-smi: $(cat "$WORK/gpu.csv")"
else
  say "no nvidia-smi on this machine"
fi

# 1. The kit.
for f in deno.xz deno.sha256 kit.json build/kernels_wasm.ts; do
  [ -f "$KIT/$f" ] || abort "$KIT/$f is missing: run bench/gpu-kit.sh in the checkout the call sends, and carry $KIT"
done
say "kit: $(cat "$KIT/kit.json")"
cp "$KIT/kit.json" "$WORK/kit.json"
mkdir -p build && cp "$KIT"/build/*.ts build/
[ -d node_modules ] || cp -r "$KIT/node_modules" node_modules

# 2. The Vulkan loader and libglvnd, where they are missing (as root: they go into /). The
# cache is read once into a variable: `ldconfig -p | grep -q` fails under pipefail when grep
# stops reading early.
cache=$(ldconfig -p)
if ! grep -q 'libvulkan\.so\.1 ' <<<"$cache" || ! grep -q 'libGLdispatch\.so\.0 ' <<<"$cache"; then
  if [ "$(id -u)" = 0 ] && command -v dpkg >/dev/null; then
    for f in "$KIT"/gl/*.deb; do dpkg -x "$f" / || say "dpkg -x $f failed"; done
    ldconfig
    say "unpacked $(ls "$KIT"/gl | tr '\n' ' ')"
  else
    say "the Vulkan loader or libglvnd is missing and cannot be unpacked here (not root, or no dpkg)"
  fi
fi
# The NVIDIA driver's own folder, where the loader does not look by itself.
NV=${NVIDIA_ROOT:-/usr/local/nvidia}
if ! grep -q libGLX_nvidia <<<"$cache" && [ -e $NV/lib64/libGLX_nvidia.so.0 ]; then
  export LD_LIBRARY_PATH=$NV/lib64:$NV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH (libGLX_nvidia, the NVIDIA Vulkan driver, was not in ldconfig's cache)"
fi
say "libraries: $(ldconfig -p | grep -oE 'lib(vulkan|GLdispatch|GLX_nvidia|EGL_nvidia)\.so[.0-9]*' | sort -u | tr '\n' ' ')"
say "Vulkan drivers (ICD files): $(ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d $NV/share/vulkan/icd.d 2>/dev/null | tr '\n' ' ')"

# 3. Deno, decompressed into the work folder (python3's lzma where there is no xz), checked.
DENO=$WORK/bin/deno
mkdir -p "$WORK/bin" "$WORK/deno_dir" "$WORK/xdg"
chmod 700 "$WORK/xdg"
if command -v xz >/dev/null; then
  xz -dc "$KIT/deno.xz" >"$DENO"
else
  python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$KIT/deno.xz" "$DENO"
fi
[ "$(sha256sum <"$DENO" | cut -d' ' -f1)" = "$(cat "$KIT/deno.sha256")" ] || abort "$KIT/deno.xz did not decompress to the binary gpu-kit.sh packed (checksum differs)"
chmod +x "$DENO"
export DENO_DIR=$WORK/deno_dir XDG_RUNTIME_DIR=$WORK/xdg DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 TERM=dumb
deno_version=$("$DENO" --version 2>&1) || abort "the unpacked Deno does not start: $deno_version"
say "deno: $(echo "$deno_version" | tr '\n' ' ')"
echo "$deno_version" | head -1 >"$WORK/deno_version.txt"
DENO_RUN=("$DENO" run -A --quiet --no-lock)

# 4. The adapter: the one requestAdapter() gives, as the bench will get it.
probe() { timeout -k 5 60 "${DENO_RUN[@]}" bench/gpu_probe.ts >"$WORK/probe.json"; }
verdict() { python3 bench/gpu_check_report.py "$WORK" - --verdict; }
say "WebGPU through Deno's $DENO_WEBGPU_BACKEND backend (DENO_WEBGPU_BACKEND)"
probe
v=$(verdict)
NV_ICD=$NV/share/vulkan/icd.d/nvidia_icd.json
if [ "$v" != hardware ] && [ -z "${VK_DRIVER_FILES:-}" ] && [ -f $NV_ICD ]; then
  say "adapter: $v; again with the NVIDIA driver named: VK_DRIVER_FILES=$NV_ICD"
  export VK_DRIVER_FILES=$NV_ICD __EGL_VENDOR_LIBRARY_FILENAMES=$NV/share/glvnd/egl_vendor.d/10_nvidia.json
  probe
  v=$(verdict)
fi
say "adapter: $v: $(cat "$WORK/probe.json")"
if [ "$v" != hardware ]; then
  say "the Vulkan loader's account of its drivers (VK_LOADER_DEBUG=error,warn,driver):"
  VK_LOADER_DEBUG=error,warn,driver timeout -k 5 60 "${DENO_RUN[@]}" bench/gpu_probe.ts 2>&1 | awk '!seen[$0]++' | head -40
  case $v in
    software)
      if [ "$ALLOW_FALLBACK" = 1 ]; then
        say "WARNING: only a SOFTWARE adapter (ALLOW_FALLBACK=1): these figures are the CPU's, not a GPU's"
      else
        abort "only a SOFTWARE WebGPU adapter was found ($(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["info"]["description"])' "$WORK/probe.json")): the GPU's Vulkan driver did not load, so nothing was timed"
      fi ;;
    nodevice) abort "the adapter was found but retrograd could not open a device on it (deviceError in the JSON's adapter)" ;;
    none) abort "no WebGPU adapter: no Vulkan driver loaded (see the loader's account above)" ;;
    *) abort "the adapter probe (bench/gpu_probe.ts) failed or printed no JSON: see the log above" ;;
  esac
fi

# 5. The stages, most needed first: ours, the per-kernel profile and the GEMM variants (what
# to change next), PyTorch's, the parity test, PyTorch's peak memory.
failures=0
BENCH=("${DENO_RUN[@]}" bench/main.ts --backend webgpu --repeats "$REPEATS")
stage sgemm 40 "${BENCH[@]}" --sizes "$SIZES" --models "" || failures=$((failures + 1))
stage resnet20 45 "${BENCH[@]}" --sizes "" --models resnet20 --batch "$BATCH_RESNET20" || failures=$((failures + 1))
stage profile 50 "${DENO_RUN[@]}" bench/gpu_profile.ts --models "resnet20:$BATCH_RESNET20,resnet18:$BATCH_RESNET18" \
  --steps 3 --out "$WORK/profile.json" || failures=$((failures + 1))
# Host time of a ResNet-20 step by layer, submitting every 32 dispatches (the default) and once per step.
stage host 30 "${DENO_RUN[@]}" bench/gpu_host.ts --models "resnet20:$BATCH_RESNET20" --steps 10 --per-submit 32,256 \
  --out "$WORK/host.json" || failures=$((failures + 1))
# Its own budget (VARIANTS_S) stops it starting new shapes well before the stage's cap.
stage variants 75 "${DENO_RUN[@]}" bench/gpu_gemm_variants.ts --sizes "$SIZES" --batch "$BATCH_RESNET20" \
  --budget-s "${VARIANTS_S:-45}" || failures=$((failures + 1))
stage resnet18 60 "${BENCH[@]}" --sizes "" --models resnet18 --batch "$BATCH_RESNET18" || failures=$((failures + 1))
torch_args=(--device "$TORCH_DEVICE" --threads 1 --models "resnet20:$BATCH_RESNET20,resnet18:$BATCH_RESNET18" --repeats "$REPEATS")
stage torch 45 "$TORCH_PYTHON" bench/torch_ref.py "${torch_args[@]}" --sizes "$SIZES" || failures=$((failures + 1))
if stage parity 40 "${DENO_RUN[@]}" test/webgpu.test.ts; then shown=8; else failures=$((failures + 1)) shown=200; fi
sed 's/\x1b\[[0-9;]*m//g' "$WORK/parity.out" 2>/dev/null | tail -$shown # the failures, or the counts
stage torch-peak 30 "$TORCH_PYTHON" bench/torch_ref.py "${torch_args[@]}" --peak-only || failures=$((failures + 1))

say "done: $failures stage(s) did not finish cleanly"
finish $((failures > 0 ? 1 : 0))
