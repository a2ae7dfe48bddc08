# Set-up contract: `make demo` and `make test` each create the virtual environment and
# install the package first, on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench-demo bench-geometry bench-convergence bench-throughput bench-calibration bench-multivariate bench-future-break bench-sbc notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bayes-unsl demo --out demo_out

lint: $(STAMP)
	$(VENV)/bin/ruff check bayes_unsl tests benchmarks

# One BLAS thread: the fits in the tests are small, and threads only contend on 2 cores.
test: $(STAMP) lint
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -q -ra

DATA ?= ../shared/data

bench-demo: $(STAMP)
	$(PY) benchmarks/demo_time.py

bench-geometry: $(STAMP)
	$(PY) benchmarks/geometry.py

bench-convergence: $(STAMP)
	$(PY) benchmarks/convergence.py --data-root $(DATA) --benchmark --forms bnsl,bnsl_direct --depths 6,8,10 --direct-depths 6

bench-throughput: $(STAMP)
	$(PY) benchmarks/throughput.py

bench-calibration: $(STAMP)
	$(PY) benchmarks/calibration.py --data-root $(DATA)

bench-multivariate: $(STAMP)
	$(PY) benchmarks/multivariate.py --data-root $(DATA)

bench-future-break: $(STAMP)
	$(PY) benchmarks/future_break.py --data-root $(DATA) --max-curves 16

# The recorded SBC runs (benchmarks/results/sbc_*.md): about 2 hours on 2 cores.
bench-sbc: $(STAMP)
	for b in 0 1; do for n in 8 30; do \
		$(PY) benchmarks/sbc.py --breaks $$b --points $$n --warmup 1000 --draws 1000 || exit 1; \
	done; done
	$(PY) benchmarks/sbc.py --breaks 2 --warmup 1000 --draws 1000
	$(PY) benchmarks/sbc.py --form chinchilla --breaks 0
	$(PY) benchmarks/sbc.py --form unsl --breaks 1
	$(PY) benchmarks/sbc.py --form unsl --breaks 1 --likelihood student_t
	$(PY) benchmarks/sbc.py --form unsl --breaks 1 --simulations 50 --priors '{"share_slopes": true}'
	$(PY) benchmarks/sbc.py --form unsl --breaks 0 --simulations 30
	$(PY) benchmarks/sbc.py --breaks 1
	$(PY) benchmarks/sbc.py --breaks 1 --likelihood normal

# Execute the worked notebooks in place at full sampler settings (tens of minutes on 2 cores).
notebooks: $(STAMP)
	BAYES_UNSL_DATA=$(abspath $(DATA)) $(PY) notebooks/execute.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
