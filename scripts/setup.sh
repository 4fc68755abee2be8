#!/usr/bin/env bash
# Create (or reuse) .venv and install deaoff-gym with its test extras and the ray extra
# (sweep.py --backend ray; tests/test_sweep.py compares it with the local backend).
# torch is installed first as 2.13.0, the CPU build this project is developed with, so
# that the dependency resolver never pulls a multi-GB CUDA build.  On a machine whose
# PyPI serves only CUDA wheels, install the CPU wheel first yourself (PyTorch's CPU
# index), then re-run this script: an installed torch >= 2.2 is kept as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  py=""
  for cand in python3.11 python3 python; do
    if command -v "$cand" >/dev/null 2>&1; then py="$cand"; break; fi
  done
  [ -n "$py" ] || { echo "setup: no python3 found" >&2; exit 2; }
  "$py" -m venv .venv
fi
stamp=.venv/.deaoff-installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
  exit 0  # already installed for this pyproject.toml
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,ray]"
touch "$stamp"
