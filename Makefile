# rmapsim: `make demo` installs and runs the main job; `make test` installs and runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test check bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# the race demo: a hotremove-exit run that hits the page_lock_anon_vma race (README.md)
demo: $(STAMP)
	$(BIN)/rmapsim run hotremove-exit --seed 179

test: $(STAMP)
	$(BIN)/python -m pytest

# the fast tier for the edit loop: everything but the tests marked slow (README: Testing)
check: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -x

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_locks.py
	$(BIN)/python benchmarks/bench_mm.py
	$(BIN)/python benchmarks/hit_rates.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
