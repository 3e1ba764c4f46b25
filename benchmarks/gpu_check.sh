#!/usr/bin/env bash
# GPU check (issue 8) for a machine with one GPU, JAX and PyTorch but no TensorFlow or Keras.
# Carry the wheels of keras, namex and optree for its Python in .whl/ (see benchmarks/README.md):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl keras namex optree
# Then, from the repository root there:  bash benchmarks/gpu_check.sh [gpu_check.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
site=/tmp/mat_keras_site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir --target "$site" .
export PYTHONPATH="$site" KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 benchmarks/gpu_check.py --json "${OUT:-.}/gpu_check.json" "$@"
