#!/usr/bin/env bash
# The GPU check: run first on a GPU machine; writes one JSON (default benchmarks/gpu-check.json).
#
#   bash benchmarks/gpu_check.sh                  # full: an H100/H200, at most 450 s of parts
#   bash benchmarks/gpu_check.sh --size tiny      # seconds on a CPU (the test); --size medium: minutes
#   MNIST1D_WHEEL=.whl/mnist1d-0.0.2.post1-py3-none-any.whl bash benchmarks/gpu_check.sh
#
# Runs from the checkout (PYTHONPATH=.), no network needed; every option is benchmarks/gpu_check.py's (--help).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
