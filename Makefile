# Two entry points for a fresh machine (Python 3.11): `make app` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: app test bench table

app: $(VENV)/.runtime
	$(PY) -m streamlit run app.py --server.headless true

test: $(VENV)/.dev
	bash scripts/install_chromium.sh
	$(PY) -m pytest

bench: $(VENV)/.dev
	$(PY) -m camlab.bench

table: $(VENV)/.runtime
	$(PY) -m camlab.walls_table --out docs/walls_table.md

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@
