# Two entry points for a fresh machine (Python 3.11): `make app` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: app test bench table screenshots

app: $(VENV)/.runtime
	$(PY) -m streamlit run app.py --server.headless true

test: $(VENV)/.dev
	bash scripts/install_chromium.sh
	$(PY) -m pytest

# The browser test's page screenshots, copied where README shows them.
screenshots: $(VENV)/.dev
	bash scripts/install_chromium.sh
	$(PY) -m pytest tests/test_browser.py
	mkdir -p docs/screenshots
	cp artifacts/page_Explore.png docs/screenshots/explore.png
	cp artifacts/walls_after_drawing.png docs/screenshots/walls.png
	cp artifacts/page_Benchmark.png docs/screenshots/benchmark.png
	cp artifacts/page_Training.png docs/screenshots/training.png
	cp artifacts/page_Theory.png docs/screenshots/theory.png

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
