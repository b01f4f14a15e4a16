# Two commands: `make run` (quick start) and `make test` (lint, types, whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000

.PHONY: install run test lint typecheck migrations-check pytest worker beat stop-db clean-data

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The quick start, through ./manage (the entry point of every README command): embedded
# PostgreSQL unless DATABASE_URL is set, tasks run eagerly unless CELERY_BROKER_URL is
# set, demo data and its night (alerts, snapshots, points …), server on http://127.0.0.1:$(PORT).
run: install
	@./manage migrate --noinput && \
	./manage seed_demo && \
	./manage run_nightly --tenant demo && \
	./manage send_digests --tenant demo && \
	echo "" && \
	echo "  Target CRM on http://127.0.0.1:$(PORT)/  (admin: /admin/, API: http://127.0.0.1:$(PORT)/api/v1/docs/)" && \
	echo "  Logins, password 'demo': demo-admin, demo-manager, demo-rep" && \
	echo "" && \
	./manage runserver 127.0.0.1:$(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	DEBUG=1 $(BIN)/mypy .

# The database is DATABASE_URL, else the server on 127.0.0.1:5432, else embedded;
# the broker is CELERY_BROKER_URL, else the local Redis, else (for the real-worker
# tests) kombu's filesystem transport.
# `make test` runs the suite in two processes (pytest-xdist, each with its own test
# database); `make pytest` in one, unless PYTEST_WORKERS is given. xdist's default "load"
# distribution: the scope-based ones (loadfile, loadgroup) key tests by node id and run
# one of schemathesis's operations, which share theirs, and still exit 0.
PYTEST_WORKERS ?=
pytest: install
	@eval "$$($(BIN)/python scripts/devenv.py --prefer-local --broker)" && \
	DEBUG=1 $(BIN)/python -m pytest $(if $(PYTEST_WORKERS),-n $(PYTEST_WORKERS)) $(PYTEST_ARGS)

# Models and migrations agree (a model change without its migration fails the build).
migrations-check: install
	@eval "$$($(BIN)/python scripts/devenv.py --prefer-local)" && \
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run

test: lint typecheck migrations-check pytest
test: PYTEST_WORKERS = 2

# Against the quick start's database, like ./manage; they need CELERY_BROKER_URL.
worker beat: install
	@test -n "$$CELERY_BROKER_URL" || { echo "Set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0) first." >&2; exit 1; }
	@eval "$$($(BIN)/python scripts/devenv.py)" && \
	DEBUG=$${DEBUG:-1} $(BIN)/celery -A config $@ --loglevel=INFO

# `make run` leaves the embedded PostgreSQL running (the next start is quicker); this stops it.
stop-db:
	@if test -x $(BIN)/python; then $(BIN)/python scripts/devenv.py --stop; \
	else echo "No $(VENV): the embedded PostgreSQL is not installed, nothing to stop."; fi

clean-data: stop-db
	rm -rf .data
