# `make run` and `make test` do the whole set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

CHROMIUM := /usr/bin/chromium

.PHONY: install run playground test lint format services browser check bench messages clean

$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock -r requirements-dev.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## run the bot (migrations are applied at start-up); without BOT_TOKEN, the playground instead
run: install
	@if [ -n "$$BOT_TOKEN" ] || grep -qsE '^[[:space:]]*BOT_TOKEN[[:space:]]*=[[:space:]]*[^[:space:]#]' .env; then \
		$(BIN)/consultbot run; \
	else \
		echo "BOT_TOKEN is not set (environment or .env): starting the playground instead, no Telegram needed."; \
		$(BIN)/python -m consultbot playground; \
	fi

## the bot against the Bot API emulator, with a web page at http://127.0.0.1:8080
playground: install
	$(BIN)/python -m consultbot playground

## ruff, then every test (unit, dialog, end-to-end); starts PostgreSQL/Redis if they are down
test: install services browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2 --dist worksteal

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

services:
	@bash scripts/ensure-services.sh

## headless Chromium for the playground's browser test (Debian's package; we are root in CI)
browser:
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji; } \
		|| echo "could not install Chromium: the browser test will fail (see README, Tests)"

check: install
	$(BIN)/consultbot check consultations/*.yaml

bench: install
	$(BIN)/python bench/broadcast.py

## re-extract interface strings into the catalogs (French is the source)
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k T -k _ -k gettext -k ngettext:1,2 -k N_ --no-location --sort-output --omit-header -o locales/messages.pot .
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching --ignore-obsolete

clean:
	rm -rf $(VENV)
