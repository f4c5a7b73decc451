# MDX Hub — two commands: `make run` (demo hub on http://127.0.0.1:8000) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test install install-test lint bench-taxii clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[test,dev]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Embedded default: SQLite file, in-process tasks, local-memory cache. DEBUG on for local use only.
# The demo runs with four-eyes review on: nobody approves their own organisation's objects.
run: export MDX_FOUR_EYES ?= true
run: install
	DEBUG=$${DEBUG:-true} $(PY) manage.py demo
	DEBUG=$${DEBUG:-true} $(PY) manage.py runserver $(HOST):$(PORT)

# Honours DATABASE_URL / CELERY_BROKER_URL / REDIS_URL when set (see .ci/run); SQLite otherwise.
test: install-test
	SECRET_KEY=$${SECRET_KEY:-test-only-secret-key} $(PY) -m pytest $(PYTEST_ARGS)

lint: install-test
	$(VENV)/bin/ruff check config indicators sharing tests bench

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm staticfiles .pytest_cache artifacts
