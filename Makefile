# Set-up is automatic: every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: report test benchmarks gallery-rates looks clean

report: $(VENV)/.installed          ## the main job: the report notebooks on the built-in defaults, offline
	$(BIN)/semkit report --out reports --figures figures $(if $(SHAPENET),--shapenet $(SHAPENET))

test: $(VENV)/.installed-test       ## the whole test suite
	$(BIN)/python -m pytest

benchmarks: $(VENV)/.installed      ## speed measurements; rewrites docs/benchmarks.md
	$(BIN)/python benchmarks/run.py

gallery-rates: $(VENV)/.installed   ## recognition rates of the gallery; rewrites docs/gallery.md
	$(BIN)/python benchmarks/gallery_recognition.py

looks: $(VENV)/.installed           ## recognition under three looks (white, materials on black / grey); rewrites docs/looks.md
	$(BIN)/python benchmarks/looks.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[notebooks]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
