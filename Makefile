# Two entry points for a fresh machine (Python 3.11): `make app` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: app test lint docs wheel-check fuzz bench bench-app bench-concurrency bench-audit bench-road table table-at-init screenshots

app: $(VENV)/.runtime
	$(PY) -m streamlit run app.py

test: $(VENV)/.dev
	bash scripts/install_chromium.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pyright
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pyright

# The API reference from the docstrings, in build/site (not published; CI builds it with --strict).
docs: $(VENV)/.dev
	$(VENV)/bin/mkdocs build --strict

# The wheel as a user installs it, in a fresh environment outside the checkout (CI runs it).
wheel-check: $(VENV)/.dev
	bash scripts/check_wheel.sh $(PY)

# Many more random examples of the property-based fuzz suite; outcome counts in artifacts/fuzz_outcomes.json.
fuzz: $(VENV)/.dev
	CAMLAB_FUZZ=thorough $(PY) -m pytest tests/test_fuzz.py --hypothesis-show-statistics
	cat artifacts/fuzz_outcomes.json

# The browser test's page screenshots, copied where README shows them.
screenshots: $(VENV)/.dev
	bash scripts/install_chromium.sh
	$(PY) -m pytest tests/test_browser.py
	mkdir -p docs/screenshots
	cp artifacts/page_Explore.png docs/screenshots/explore.png
	cp artifacts/walls_feature_wall.png docs/screenshots/walls.png
	cp artifacts/page_Benchmark.png docs/screenshots/benchmark.png
	cp artifacts/page_Training.png docs/screenshots/training.png
	cp artifacts/page_Theory.png docs/screenshots/theory.png
	cp artifacts/audit_page.png docs/screenshots/audit_page.png

bench: $(VENV)/.dev
	$(VENV)/bin/camlab-bench

# The app in headless Chromium: strokes and widget changes until every readout settles (p50/p95).
bench-app: $(VENV)/.dev
	bash scripts/install_chromium.sh
	$(VENV)/bin/camlab-bench-app --out docs/results/app_latency.json

# Several visitors at once in headless Chromium: a fast view beside another visitor's Score-CAM, 8 sessions.
bench-concurrency: $(VENV)/.dev
	bash scripts/install_chromium.sh
	$(VENV)/bin/camlab-bench-concurrency --out docs/results/concurrency.json

# An audit of 100 generated images with five fast CAMs and every control: its time and the report's.
bench-audit: $(VENV)/.dev
	$(VENV)/bin/camlab-bench-audit --images 100 --out docs/results/audit_speed.json

# ROAD on 8 generated images: camlab's batched imputation against grad-cam's ROADCombined, same maps.
bench-road: $(VENV)/.dev
	$(PY) -m camlab.bench.road_speed --images 8 --out docs/results/road_speed.json

table: $(VENV)/.runtime
	$(VENV)/bin/camlab-table1 --out docs/walls_table.md

# The trained walled VGG and ResNet with their twins, on the layer cells each walled model never reads.
table-architectures: $(VENV)/.runtime
	$(VENV)/bin/camlab-table1 --region cells --models models/masked_vgg.pt models/baseline_vgg.pt \
		models/masked_resnet.pt models/baseline_resnet.pt --out docs/walls_architectures.md

# Five torchvision architectures with random weights, walled at their default layer, 16 seeds each.
table-at-init: $(VENV)/.runtime
	$(VENV)/bin/camlab-table1 --at-init resnet18 resnet50 convnext_tiny vit_b_16 swin_t --seeds 16 \
		--out docs/walls_at_init.md

# The runtime packages, then camlab itself, editable, so `import camlab` and the camlab-* commands
# work from any directory.
$(VENV)/.runtime: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	# Quantus (metric agreement tests) asks for opencv-python, whose cv2 would replace opencv-python-headless's;
	# the rest of what it imports is installed above.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps quantus==0.6.0 cachetools==8.0.2
	touch $@
