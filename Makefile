# One-command set-up: `make demo` and `make test` create .venv and install what is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The torch build to install; override for another CUDA/CPU build, e.g.
#   make test TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
export NO_ALBUMENTATIONS_UPDATE := 1
export WANDB_MODE ?= offline

.PHONY: install test demo lint clean benchmarks

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The suite runs in TEST_WORKERS processes (one thread each) and must leave the repository as
# it found it: `git status` before and after must agree.
TEST_WORKERS ?= 2
test: $(STAMP)
	@before=$$(mktemp); after=$$(mktemp); \
	git status --porcelain --untracked-files=all > $$before 2>/dev/null || true; \
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS); code=$$?; \
	git status --porcelain --untracked-files=all > $$after 2>/dev/null || true; \
	if ! cmp -s $$before $$after; then \
		echo "make test: the tests changed the repository (git status before/after):"; \
		diff $$before $$after; code=1; \
	fi; \
	rm -f $$before $$after; exit $$code

demo: $(STAMP)
	HISTO_GAN=$(VENV)/bin/histo-gan experiments/demo.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check histo_gan tests benchmarks tools experiments
	$(VENV)/bin/ruff format --check histo_gan tests benchmarks tools experiments
	$(VENV)/bin/lint-imports

benchmarks: $(STAMP)
	$(PY) benchmarks/metrics_speed.py
	$(PY) benchmarks/synthesis_speed.py
	$(PY) benchmarks/daff_vs_pix2pixhd.py
	$(PY) benchmarks/lightning_overhead.py

clean:
	rm -rf runs lightning_logs .pytest_cache
