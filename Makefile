# One venv, reused while pyproject.toml is unchanged: torch alone is ~5.5 GB and a minute to install.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   := demo
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# This machine (and CI, a machine like it) sets PYTHONDONTWRITEBYTECODE=1: every process then compiles every module
# it imports from source, torch's and Prefect's included, and the suite starts some hundred of them. Unset, the
# first import writes the .pyc that the rest read.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install install-gpu demo test test-long bench mutation lint clean

install: $(STAMP)

# --no-compile: pip byte-compiles every module it installs (torch's thousands among them): 164 s for a fresh
# install here with it, 99 s without. A module is compiled instead the first time it is imported, once (see
# PYTHONDONTWRITEBYTECODE above).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -e '.[dev]'
	touch $(STAMP)

# faiss-gpu-cu12 ships the same `faiss` module as faiss-cpu: one replaces the other.
install-gpu: $(STAMP)
	$(PY) -m pip uninstall --yes faiss-cpu
	$(PY) -m pip install --quiet -e '.[gpu,dev]'

# The sample fg is graded and pillarboxed, so the overlay shows where it went; --plot writes the frame map beside it.
demo: $(STAMP)
	$(PY) -m vidkompy.samples $(DEMO)
	PREFECT_HOME=$(CURDIR)/$(DEMO)/prefect $(VENV)/bin/vidkompy $(DEMO)/demo.bg.mp4 $(DEMO)/demo.fg.mp4 \
		-o $(DEMO)/demo_overlay.mp4 --cache-dir $(DEMO)/cache --plot
	@echo "look at $(DEMO)/demo_overlay.mp4 and $(DEMO)/demo_overlay.map.png (README: 'What the demo shows')"

# Long footage, length scaling and several workers are `long` tests (pyproject.toml's markers): `make test-long`,
# which `make bench` runs first.
test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n auto --dist loadfile -m "not long" tests

test-long: $(STAMP)
	$(PY) -m pytest -q -n auto --dist loadfile -m long tests

bench: test-long
	$(PY) -m benchmarks $(if $(PEER),--peer,)

# Do the tests catch planted faults? mutmut on the DTW, resampling, the sub-pixel fit, the blend masks and the chunk
# and segment planning, each against its own fast unit tests: 11-21 minutes on 2 cores, so not part of `make test`.
# Writes benchmarks/results/<machine>.mutation.json (benchmarks/mutation.py; MUTATION_ARGS="--max-children 2").
mutation: $(STAMP)
	$(PY) -m benchmarks.mutation $(MUTATION_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check vidkompy tests benchmarks
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(DEMO) .pytest_cache
