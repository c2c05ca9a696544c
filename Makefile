# Dualkey: the two commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt gatekeeper/requirements*.txt | sha1sum | cut -c1-12)

.PHONY: setup system-deps demo test test-fast bench loc clean gatekeeper-dist

setup: $(STAMP)

$(STAMP): requirements.txt gatekeeper/requirements.txt gatekeeper/requirements-geoip.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

# System packages the tests need (Chromium for the browser tests, Node.js for tests/js); idempotent.
system-deps:
	bash scripts/system-deps.sh

demo: setup
	$(PY) scripts/demo.py

test: setup
	bash scripts/test.sh

test-fast: setup
	$(PY) -m pytest -n 2 -q -m "not e2e"

bench: setup
	$(PY) bench/run_all.py

# The gatekeeper's size: code lines per module, the trust kernel, the whole.
loc:
	python3 bench/loc.py

# The installable gatekeeper (gatekeeper/pyproject.toml): dist/dualkey_gatekeeper-VERSION-py3-none-any.whl.
# Built in the package's own directory; setuptools' scratch directories are removed after.
gatekeeper-dist: setup
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir dist ./gatekeeper
	rm -rf gatekeeper/build gatekeeper/*.egg-info

clean:
	rm -rf $(VENV) var .pytest_cache dist
