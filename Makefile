# The README's front-door commands. `make run` starts ReplayHub, `make test` tests it;
# both install what they need first (Python venv, npm packages, Chromium for tests).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test install lint chromium

run: install
	$(PY) manage.py bootstrap
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(VENV)/bin/honcho --procfile Procfile start

test: install chromium
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	@echo "Installing Python packages into $(VENV)…"
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --editable '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	@echo "Installing browser packages (posthog-js, rrweb-player) with npm ci…"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The end-to-end tests drive Debian's Chromium (never a downloaded browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium package…"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
