#!/usr/bin/env bash
# Download, here, the packages that the GPU machines' image lacks (Python 3.12 there), into
# .whl/ (ignored by git), for benchmarks/gpu_session.sh. The versions are this checkout's
# virtual environment's, so both machines run the same ArviZ and scoring code.
set -euo pipefail
cd "$(dirname "$0")/.."
version() { .venv/bin/python -m pip show "$1" | sed -n 's/^Version: //p'; }
mkdir -p .whl
for name in arviz h5netcdf xarray-einstats platformdirs scoringrules; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "$name==$(version "$name")"
done
ls .whl
