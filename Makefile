# The two commands a user needs: `make run` and `make test`. Each sets up what it needs.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TSTAMP  := $(VENV)/.installed-test

.PHONY: install install-test run test bench tune mutation ingest vectors clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install only when pyproject.toml changed: a no-op `make install` takes well under a second.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(TSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP) $@

install: $(STAMP)

install-test: $(TSTAMP)

ingest: install
	$(BIN)/mlsd-bot ingest

# After editing knowledge/ or mlsd_bot/data/signals.yaml: re-embed what changed into the
# shipped vectors (mlsd_bot/data/embedding/vectors.npz and knowledge-vectors.npz) and commit them.
vectors: install
	$(BIN)/mlsd-bot ingest --refresh-vectors

# The app builds (or refreshes) the index itself before serving, from the shipped vectors:
# no second process start for a separate `mlsd-bot ingest`.
run: install
	$(BIN)/python app.py

# Two workers (pytest-xdist), one test file per worker at a time: module-scoped fixtures
# (the browser app, the Chroma server) start once per file, and each worker has its own temp dirs.
test: install-test
	bash scripts/test-deps.sh
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# Figures for the README: tuned (tune half) and held-out side by side; the app's first page and RSS;
# the app under load (bench/load.py: one process, 8 busy candidates, then 50 who think 5 s).
bench: install-test
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/interview.py
	$(BIN)/python bench/app_memory.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/load.py --candidates 50 --think 5

# Re-choose the detector thresholds on the tune half (prints them; copy into mlsd_bot/signals.py).
tune: install
	$(BIN)/python bench/tune_signals.py

# How many one-change mutants of retrieval.py and signals.py the tests let through (~20 min).
mutation: install-test
	$(BIN)/python bench/mutation.py

clean:
	rm -rf $(VENV) .mlsd
