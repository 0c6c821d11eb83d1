# `make run`: set up (venv + install, when needed) and run every method on the default job
# (digits, MLP, class-wise; tuned defaults), printing one ranked table;
# `make run ARGS="method=ga"` runs that one job instead (any unlearnbench arguments).
# `make test`: set up the same way and run the test suite.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: run tune test lint sweep fashion-data clean-cache

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/unlearnbench $(if $(strip $(ARGS)),$(ARGS),-m +experiment=quickstart)

# Tune every method with a search space (conf/tune/) on digits and Fashion-MNIST, both
# scenarios; resumable (README "Tuning"). ARGS are passed on, e.g. ARGS="method=ft".
tune: $(STAMP)
	$(PY) scripts/tune_all.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check unlearnbench tests scripts

# Fashion-MNIST from Debian (needs root; the package is ~30 MB).
fashion-data:
	test -d /usr/share/datasets/fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)

clean-cache:
	rm -rf results/cache
