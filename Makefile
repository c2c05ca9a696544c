# Dualkey: the two commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements*.txt gatekeeper/requirements*.txt | sha1sum | cut -c1-12)

.PHONY: setup system-deps demo test test-fast bench loc clean gatekeeper-dist gatekeeper-zip

# .venv/checkov: checkov's own virtualenv (its exact boto3 pin conflicts with the gatekeeper's).
setup: $(STAMP)

$(STAMP): requirements.txt requirements-checkov.txt gatekeeper/requirements.txt gatekeeper/requirements-geoip.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet -r requirements-checkov.txt
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

# The gatekeeper's Lambda code (deploy/aws/gatekeeper.yaml's CodeKey): dist/gatekeeper-VERSION-pyPY-ARCH.zip,
# built twice and compared (reproducible). ARCH=x86_64 for an x86 function; GEOIP_DB=FILE.mmdb
# ships a country database (acl.countries) and maxminddb: ...-ARCH-geoip.zip.
ARCH ?= arm64
GEOIP_DB ?=
gatekeeper-zip: setup
	$(PY) scripts/build_gatekeeper_zip.py --arch $(ARCH) --check $(if $(GEOIP_DB),--geoip-db $(GEOIP_DB))

clean:
	rm -rf $(VENV) var .pytest_cache dist
