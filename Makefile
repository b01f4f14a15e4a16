# Two commands: `make run` (quick start) and `make test` (lint, types, whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000

.PHONY: install run test lint typecheck pytest worker beat clean-data

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The quick start: embedded PostgreSQL unless DATABASE_URL is set, tasks run eagerly
# unless CELERY_BROKER_URL is set, demo data, server on http://127.0.0.1:$(PORT).
run: install
	@eval "$$($(BIN)/python scripts/devenv.py)" && \
	export DEBUG=$${DEBUG:-1} && \
	$(BIN)/python manage.py migrate --noinput && \
	$(BIN)/python manage.py seed_demo && \
	$(BIN)/python manage.py run_nightly --tenant demo && \
	$(BIN)/python manage.py send_digests --tenant demo && \
	echo "" && \
	echo "  Target CRM on http://127.0.0.1:$(PORT)/admin/  (API: http://127.0.0.1:$(PORT)/api/v1/docs/)" && \
	echo "  Logins, password 'demo': demo-admin, demo-manager, demo-rep" && \
	echo "" && \
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	DEBUG=1 $(BIN)/mypy .

# The database is DATABASE_URL, else the server on 127.0.0.1:5432, else embedded;
# the broker is CELERY_BROKER_URL, else the local Redis, else (for the real-worker
# tests) kombu's filesystem transport.
pytest: install
	@eval "$$($(BIN)/python scripts/devenv.py --prefer-local --broker)" && \
	DEBUG=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

worker: install
	DEBUG=$${DEBUG:-1} $(BIN)/celery -A config worker --loglevel=INFO

beat: install
	DEBUG=$${DEBUG:-1} $(BIN)/celery -A config beat --loglevel=INFO

clean-data:
	rm -rf .data
