# `make run` and `make test` do the whole set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint format services check bench messages clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## run the bot (migrations are applied at start-up); needs BOT_TOKEN (see .env.example)
run: install
	$(BIN)/consultbot run

## ruff, then every test (unit, dialog, end-to-end); starts PostgreSQL/Redis if they are down
test: install services
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

services:
	@bash scripts/ensure-services.sh

check: install
	$(BIN)/consultbot check consultations/*.yaml

bench: install
	$(BIN)/python bench/broadcast.py

## re-extract interface strings into the catalogs (French is the source)
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k T -k _ -k gettext -k ngettext:1,2 -k N_ --no-location --sort-output --omit-header -o locales/messages.pot .
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching

clean:
	rm -rf $(VENV) data
