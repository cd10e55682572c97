#!/usr/bin/env bash
# On the GPU machine, from the repository root, with .gpu_check carried there
# (benchmarks/gpu_check_prepare.sh): install the carried packages, run benchmarks/gpu_check.py.
# Arguments go to gpu_check.py. Its log is written to $OUT/gpu_check.log when OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .gpu_check/wheels/*.whl
export PYTHONPATH="/tmp/site:$PWD/.gpu_check:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 -c 'import torch, detectron2; print("torch", torch.__version__, "detectron2", detectron2.__version__)'
python3 benchmarks/gpu_check.py "$@" 2>&1 | tee "${OUT:-/tmp}/gpu_check.log"
