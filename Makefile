# Everything a fresh machine needs: `make demo` (the main job) and `make test` (the test suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# torch/torchvision are pinned to the builds this project is tested with (pip takes them from the local
# wheel store here; elsewhere from PyPI). numpy < 2.4 because Brian2 2.9.0 fails to import with 2.4.
# .[dev] includes [all]: every simulator but Sinabs, Nengo and Spyx (jax/flax) among them; Sinabs comes --no-deps.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.14.1" "torchvision==0.29.1" -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps "sinabs==3.1.3" "pbr"  # sinabs pins nir<=1.0.4; its layers run with 1.0.8
	touch $(STAMP)

.PHONY: install demo test test-slow lint
install: $(STAMP)

demo: $(STAMP)
	$(BIN)/snnbridge demo

lint: $(STAMP)
	$(BIN)/ruff check snnbridge tests benchmarks .ci

# the default suite (about 10 minutes on 2 cores); the cases marked `slow` (Brian2 compiles of every native
# configuration, full-size sets of the heavier simulators, notebooks) run with `make test-slow`; CI runs both.
test: $(STAMP) lint
	$(BIN)/python -m pytest -q --timeout=600 -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q --timeout=1200 -m slow
