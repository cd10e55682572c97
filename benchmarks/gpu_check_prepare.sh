#!/usr/bin/env bash
# Prepare, on a machine with pip access, what benchmarks/gpu_check.sh carries to a bare GPU
# machine (Python 3.12, torch, torchvision; no detectron2 and none of its pure-Python needs):
#
#   .gpu_check/wheels/      wheels of detectron2's and fvcore's dependencies the image lacks
#   .gpu_check/detectron2/  detectron2's Python package: FCOS needs none of its compiled ops
#                           (detectron2 stands in dummies for deformable convs), so no build
#
# Usage: benchmarks/gpu_check_prepare.sh [DETECTRON2_SOURCE_DIR]
#   (default: the source tree of the detectron2 the current python imports)
# The folder is git-ignored; pass it to the device tool as carry=[".gpu_check"].
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SRC=${1:-$("$PYTHON" -c 'import detectron2, os; print(os.path.dirname(os.path.dirname(detectron2.__file__)))')}
DEST=.gpu_check
rm -rf "$DEST"
mkdir -p "$DEST/wheels"

# Wheels for the GPU machine's Python 3.12: binary ones as published, pure-Python sdists built
# here (they are py3-none-any). Versions as in the CI environment.
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$DEST/wheels" \
    omegaconf==2.3.0 hydra-core==1.3.2 yacs==0.1.8 termcolor==2.4.0 pycocotools==2.0.8 \
    graphviz==0.21 setuptools==80.9.0  # detectron2's model zoo imports pkg_resources (< 81)
"$PYTHON" -m pip wheel --quiet --no-deps -w "$DEST/wheels" \
    fvcore==0.1.5.post20221221 iopath==0.1.10 antlr4-python3-runtime==4.9.3

# detectron2's Python sources, with the model-zoo configs its get_config() reads (a symlink to
# ../../configs in a source checkout) copied in.
cp -r "$SRC/detectron2" "$DEST/detectron2"
find "$DEST/detectron2" \( -name '*.so' -o -name __pycache__ \) -prune -exec rm -rf {} +
rm -rf "$DEST/detectron2/model_zoo/configs"
cp -r "$SRC/configs" "$DEST/detectron2/model_zoo/configs"
du -sh "$DEST"
