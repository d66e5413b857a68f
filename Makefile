# scm-worker developer entry points (GNU make).
#
#   make venvs   .venv-worker/ (3.11, pinned DoWhy stack) and .venv-client/ (3.13)
#   make demo    run `scm demo tests/fixtures` with the client driving the worker
#   make test    the whole suite through tox: worker (3.11), client (3.13), e2e, reliability;
#                installs Debian's chromium first when it is missing (the report tests need it)
#   make lint    ruff + mypy (tox -e lint)
#   make bench   side-by-side benchmarks → benchmarks/RESULTS.md (about 20 min)
#   make clean   remove venvs, tox envs and caches
#
# Interpreters are found by scripts/find-python.sh (PYTHON311/PYTHON313, then
# PATH, then pyenv); override with e.g. `make test PYTHON313=/path/to/python3.13`.
# uv builds every environment: it comes pinned (requirements-test.txt) into the
# tool venv .venv-tox/, with tox and tox-uv, so a fresh clone needs only Python.
# Extra arguments: `make test PYTEST_ARGS='-x -k fit'`, `make test TOX_ARGS='-e worker'`.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.DEFAULT_GOAL := help

FIND_PYTHON := bash scripts/find-python.sh
# Prints the path of a Chromium that runs, installing Debian's package if needed.
ENSURE_CHROMIUM := bash scripts/ensure-chromium.sh

WORKER_VENV := .venv-worker
CLIENT_VENV := .venv-client
TOX_VENV    := .venv-tox
UV          := $(TOX_VENV)/bin/uv
# The worker's pins: package data of scm_client, so they travel in the wheel (`scm setup`).
PINS        := client/scm_client/worker-requirements.txt

# Stamps: rebuilt when their inputs change, so a second `make venvs` is instant.
WORKER_STAMP := $(WORKER_VENV)/.installed
CLIENT_STAMP := $(CLIENT_VENV)/.installed
TOX_STAMP    := $(TOX_VENV)/.installed

TOX_ARGS    ?=
PYTEST_ARGS ?=

comma := ,

# $(call venv,DIR,X.Y): create DIR with uv and Python X.Y unless it already runs X.Y.
define venv
	@if ! $(1)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != ($(subst .,$(comma),$(2))))' 2>/dev/null; then \
	    py="$$($(FIND_PYTHON) $(2))" || exit 1; \
	    echo "==> creating $(1) with $$py"; \
	    rm -rf $(1) && $(UV) venv -q --python "$$py" $(1) || exit 1; \
	fi
endef

# $(call install,DIR,ARGS): `uv pip install ARGS` into venv DIR.
define install
	@echo "==> $(1): uv pip install $(2)"
	@$(UV) pip install -q --python $(1)/bin/python $(2)
endef

# $(call compile,DIR): write the bytecode of DIR's site-packages now. uv leaves it to
# the first import, which never writes it where PYTHONDONTWRITEBYTECODE is set (or the
# venv is read-only): every worker start would compile DoWhy's stack again, ~13 s of
# imports instead of ~4 s. Seconds when it is up to date; a source that does not
# compile is left to its import, as uv's own --compile-bytecode leaves it.
define compile
	@echo "==> $(1): compiling site-packages to bytecode"
	@$(1)/bin/python -m compileall -q -j 0 \
	    "$$($(1)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
	    >/dev/null || echo "==> $(1): some sources did not compile"
endef

# $(call pip,DIR,ARGS): quiet `pip install ARGS` in venv DIR, for the tool venv that
# brings uv. The grep drops warnings about local index folders named by this machine's
# pip.conf that do not exist; pipefail keeps pip's exit status.
define pip
	@echo "==> $(1): pip install $(2)"
	@$(1)/bin/python -m pip install -q $(2) 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
endef

# Resolve both interpreters and export them for tox.ini (base_python = {env:PYTHON3xx}).
RESOLVE_PYTHONS = PYTHON311="$$($(FIND_PYTHON) 3.11)" && PYTHON313="$$($(FIND_PYTHON) 3.13)" \
	&& export PYTHON311 PYTHON313

.PHONY: help venvs demo test lint clean bench chromium

help:
	@sed -n 's/^#   make /  make /p' $(firstword $(MAKEFILE_LIST))

venvs: $(WORKER_STAMP) $(CLIENT_STAMP)

# The venvs need uv, not a rebuild whenever the tool venv changes: order-only.
$(WORKER_STAMP): $(PINS) pyproject.toml Makefile | $(TOX_STAMP)
	$(call venv,$(WORKER_VENV),3.11)
	$(call install,$(WORKER_VENV),-r $(PINS))
	$(call install,$(WORKER_VENV),--no-deps -e .)
	$(call compile,$(WORKER_VENV))
	@touch $@

$(CLIENT_STAMP): pyproject.toml Makefile | $(TOX_STAMP)
	$(call venv,$(CLIENT_VENV),3.13)
	$(call install,$(CLIENT_VENV),-e .)
	$(call compile,$(CLIENT_VENV))
	@touch $@

# The tool venv: the one pip-built venv, bringing tox, tox-uv and uv (pinned).
$(TOX_STAMP): requirements-test.txt
	@if ! $(TOX_VENV)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then \
	    py="$$($(FIND_PYTHON) 3.11)" || exit 1; \
	    echo "==> creating $(TOX_VENV) with $$py"; \
	    rm -rf $(TOX_VENV) && "$$py" -m venv $(TOX_VENV) || exit 1; \
	fi
	$(call pip,$(TOX_VENV),-c requirements-test.txt tox tox-uv uv)
	@touch $@

bench: venvs
	$(CLIENT_VENV)/bin/python benchmarks/run.py --worker-python $(WORKER_VENV)/bin/python

demo: venvs
	SCM_WORKER_PYTHON=$(CURDIR)/$(WORKER_VENV)/bin/python $(CLIENT_VENV)/bin/scm demo tests/fixtures

# The report tests render in a real headless Chromium: find or install one first,
# and hand its path to them (tox passes SCM_* through).
chromium:
	@$(ENSURE_CHROMIUM) >/dev/null

test: $(TOX_STAMP) chromium
	@SCM_CHROMIUM="$$($(ENSURE_CHROMIUM))" && export SCM_CHROMIUM && $(RESOLVE_PYTHONS) \
	    && set -x && $(TOX_VENV)/bin/tox run $(TOX_ARGS) -- $(PYTEST_ARGS)

lint: $(TOX_STAMP)
	@$(RESOLVE_PYTHONS) && set -x && $(TOX_VENV)/bin/tox run -e lint $(TOX_ARGS)

clean:
	rm -rf $(WORKER_VENV) $(CLIENT_VENV) $(TOX_VENV) .tox build *.egg-info \
	    .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
