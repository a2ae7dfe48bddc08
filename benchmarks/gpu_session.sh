#!/usr/bin/env bash
# The GPU checks of one device session, as one command (about 6 minutes on one H100).
#
# Here, first: commit, then `bash benchmarks/gpu_wheels.sh`. Then run, on the device, from
# the repository root, with `.whl` carried and a timeout that leaves time to rerun:
#     BAYES_UNSL_COMMIT=<short hash of HEAD> bash benchmarks/gpu_session.sh
# What comes back under $OUT: test_gpu.log, throughput_rows.jsonl (the committed rows plus
# this session's; copy it over benchmarks/results/throughput_rows.jsonl here and run
# `python benchmarks/throughput.py --report`) and session.log.
set -uo pipefail
: "${BAYES_UNSL_COMMIT:?name the commit: BAYES_UNSL_COMMIT=<hash> bash benchmarks/gpu_session.sh}"
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/session.log") 2>&1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
python3 -c "import jax, numpyro; print(jax.__version__, numpyro.__version__, jax.devices())"

# 1. The tests that need a GPU (they skip on CPU-only CI).
timeout 180 python3 -m pytest -q -ra -p no:cacheprovider tests/test_gpu.py > "$OUT/test_gpu.log" 2>&1
tail -3 "$OUT/test_gpu.log"

# 2. Throughput at this commit: BNSL with 1 break, 4 chains x (1000 + 1000), max tree depth
#    6, with XLA's command buffers for while loops (the README's advice for GPU runs).
cp benchmarks/results/throughput_rows.jsonl "$OUT/throughput_rows.jsonl"
export XLA_FLAGS=--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUSTOM_CALL,WHILE,CONDITIONAL
for size in 4096 16384; do
    (cd benchmarks && timeout 240 python3 throughput.py --device gpu --batch-sizes "$size" \
        --max-tree-depth 6 --warmup 1000 --draws 1000 --noise 0.0 --label command-buffers \
        --rows "$OUT/throughput_rows.jsonl" --out gpu_session > /dev/null)
    tail -1 "$OUT/throughput_rows.jsonl"
done
