# encoderlab — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The CPU build of PyTorch; a bare `torch` requirement can pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: venv browser postgres demo test test-fast bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/encoderlab demo

# Headless Chromium for the HTML report test (Debian packages; installed when missing and we are root,
# otherwise that test skips with its reason).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium + chromium-driver for the browser test"; \
	    (apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null) \
	      || echo "warning: could not install chromium; the browser test will skip"; \
	  else echo "note: no /usr/bin/chromium; the browser test will skip"; fi; fi

# PostgreSQL server binaries for the shared-sweep test (Debian `postgresql`; installed when missing and we are
# root, otherwise that test skips with its reason). The test starts its own server on a free loopback port.
postgres:
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing postgresql for the shared-sweep test"; \
	    (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null) \
	      || echo "warning: could not install postgresql; the PostgreSQL sweep test will skip"; \
	  else echo "note: no PostgreSQL server binaries; the PostgreSQL sweep test will skip"; fi; fi

test: $(STAMP) browser postgres
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
