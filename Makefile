# The README names these targets. uv (pinned) is installed from PyPI on first use if missing.
PYTHON ?= python3
UV := $(PYTHON) -m uv
UV_VERSION := 0.13.9

.PHONY: help setup run test tour test-fast lint format stack-up stack-down stack-status migrate openapi docs clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

setup:  ## install the locked dependencies into .venv
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen

run: setup  ## run the whole platform on the embedded local stack
	$(UV) run --frozen aqstream run $(ARGS)

test: setup  ## run the whole test suite (starts its own servers)
	@$(UV) run --frozen pytest $(PYTEST_ARGS); code=$$?; \
	if [ $$code -eq 5 ]; then echo "pytest collected no tests: treated as a failure" >&2; exit 1; fi; \
	exit $$code

tour: setup  ## run the README's walk-through as written against a fresh `make run`
	$(UV) run --frozen python tests/readme_tour.py

test-fast: setup  ## the suite without slow and browser tests
	$(UV) run --frozen pytest -m "not slow and not browser"

lint: setup  ## ruff lint and format check, and the layers' import contracts
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen lint-imports

format: setup
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

stack-up: setup  ## start the local servers only
	$(UV) run --frozen aqstream stack up

stack-down: setup  ## stop the local servers
	$(UV) run --frozen aqstream stack down

stack-status: setup
	$(UV) run --frozen aqstream stack status

migrate: setup  ## apply migrations
	$(UV) run --frozen aqstream migrate

docs: setup  ## regenerate docs/openapi.json, docs/configuration.md, event schemas, docs/asyncapi.yaml
	$(UV) run --frozen aqstream openapi
	$(UV) run --frozen aqstream config-doc
	$(UV) run --frozen aqstream schemas

.PHONY: screenshots
screenshots: setup  ## docs/screenshots/*.png from a running `make run` (ARGS=--dashboards-url ...)
	$(UV) run --frozen python -m bench.screenshots $(ARGS)

.PHONY: bench
bench: setup  ## flash-sale benchmark: the API against raw SQL (starts its own servers)
	$(UV) run --frozen python -m bench.flash_sale $(BENCH_ARGS)

.PHONY: bench-all
bench-all: setup  ## every benchmark, one table of figures, baselines, ratios, targets (BENCH_ARGS=--quick)
	$(UV) run --frozen python -m bench.run_all $(BENCH_ARGS)

clean:  ## stop local servers and remove their state
	-$(UV) run --frozen aqstream stack down
	rm -rf .aqstream
