#!/usr/bin/env bash
# GPU check for a lent GPU machine (the `device` tool), a few minutes end to end:
#   1. nvidia-smi --query-gpu vs our NVML inventory (burnin.nvml.os_gpus)
#   2. the GPU burn-in suite (burnin.suites.gpu) with the built-in CUDA-driver stressor, DURATION_S long:
#      compute, the 128-bit memory kernel beside cuMemcpyDtoD, the tensor-core power phase beside the
#      streaming kernel (30% of DURATION_S), then pinned H2D / D2H / both per GPU with its NUMA affinity and
#      peer copies (more than one GPU), all_reduce_perf and dcgmi when installed
#   3. a PyTorch reference on the same card: FP32 matmul (TF32 off) and a device-to-device copy
# and writes one JSON file, $OUT/gpu-check.json (partial results are written after each step); it prints
# "figures": per GPU power W / enforced limit, memory GB/s / DtoD GB/s, H2D and D2H GB/s, and peer GB/s.
# Defaults fit one 8-minute device call: 60 s suite + 2 x 20 s reference + start-up, bounded at 7 min.
#
# Usage, from the repository root:  bash bench/device/gpu-check.sh [DURATION_S] [REFERENCE_S]
# pynvml: used from the interpreter when importable, else from build/device-pylib (copy it there and
# name that folder in the device tool's `carry`):
#   mkdir -p build/device-pylib && cp .venv/lib/python3*/site-packages/pynvml.py build/device-pylib/
set -u
DURATION_S=${1:-60}
REFERENCE_S=${2:-20}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$REPO/build/device-out}
mkdir -p "$OUT"
PY=$(command -v python3 || command -v python)
export PYTHONPATH="$REPO:$REPO/build/device-pylib${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export CUDA_DEVICE_ORDER=PCI_BUS_ID  # torch's device order = NVML's, so the ratios pair the same cards
{
  echo "== host"; uname -a; nvidia-smi -L 2>&1; "$PY" --version
  "$PY" -c 'import pynvml; print("pynvml", pynvml.__file__)' 2>&1
  "$PY" -c 'import torch; print("torch", torch.__version__, torch.version.cuda)' 2>&1
} | tee "$OUT/gpu-check.log"
# Bound the whole run: suite + reference + start-up, with room to spare under the tool's limit.
BOUND=$((DURATION_S + REFERENCE_S * 2 + 180))
[ "$BOUND" -gt 420 ] && BOUND=420  # the whole call stays under 8 minutes
timeout "$BOUND" "$PY" "$REPO/bench/device/gpu_check.py" \
  --duration "$DURATION_S" --reference-s "$REFERENCE_S" --out "$OUT/gpu-check.json" 2>&1 | tee -a "$OUT/gpu-check.log"
rc=${PIPESTATUS[0]}
echo "gpu_check.py exit $rc; JSON: $OUT/gpu-check.json"
exit "$rc"
