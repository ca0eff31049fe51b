# Mouthpiece: `make run` sets up and starts everything; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PG_URL ?= postgres://postgres@127.0.0.1:5432/mouthpiece
PG_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test lint setup test-embedded test-postgres services browser clean

$(VENV)/.installed: requirements.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade -q pip
	$(VENV)/bin/pip install -r requirements.txt
	# mediapipe's twin for numpy 2 declares deps we must not take (jax, opencv-contrib): --no-deps.
	$(VENV)/bin/pip install --no-deps -r requirements-nodeps.txt
	touch $@

setup: $(VENV)/.installed

run: setup
	$(PY) manage.py runall --port $(PORT)

# Debian packages the tests use: chromium for the browser tests (Playwright never downloads a
# browser), a CJK font so Chinese screenshots are legible, nginx to check docker/nginx config.
SYSTEM_PACKAGES := chromium fonts-wqy-microhei nginx-light
browser:
	@missing=""; command -v chromium >/dev/null || missing="$$missing chromium"; \
	  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$$missing fonts-wqy-microhei"; \
	  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	    else echo "Install first: sudo apt-get install$$missing"; exit 1; fi; fi

# PostgreSQL and Redis on 127.0.0.1 for the second pass: started here when installed but stopped.
services:
	@bash .ci/services.sh

# ruff (lint, import order) and mypy (django-stubs) as configured in pyproject.toml.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: setup browser
	@bash .ci/test.sh

clean:
	rm -rf var/test var/test-pg
