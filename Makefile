# encoderlab — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The CPU build of PyTorch; a bare `torch` requirement can pull a multi-GB CUDA build. torch is installed
# first and kept out of the lock, so that any build of this version (CPU, CUDA, ROCm) can be chosen.
TORCH  ?= torch==2.13.0
# The whole dependency tree, pinned, one lock per Python version (`make lock` writes it).
PYVER  := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
LOCK   := requirements/lock-py$(PYVER).txt
PIP    := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: venv lock test-latest browser postgres demo test test-fast bench clean

venv: $(STAMP)

# Exactly the locked versions: torch, then every locked package without resolving anything, then the project.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) "$(TORCH)"
	$(PIP) --no-deps -r $(LOCK)
	$(PIP) --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

$(LOCK):
	@echo "error: no lock for Python $(PYVER) ($(LOCK)); run 'make lock' to resolve one, or use Python 3.11" >&2; exit 2

# Re-resolve the newest releases that pyproject.toml's ranges allow and write $(LOCK); review, test, commit.
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) pip-tools
	echo "$(TORCH)" > $(VENV)/torch-constraint.txt
	$(PY) -m piptools compile --quiet --upgrade --extra test --strip-extras --no-emit-index-url \
	  --no-emit-find-links --unsafe-package torch --constraint $(VENV)/torch-constraint.txt \
	  --output-file $(LOCK) pyproject.toml
	@echo "wrote $(LOCK); run 'make test' to install and test it"

# The suite against the newest releases (no lock) in a separate virtualenv, to see what a new release breaks.
test-latest: browser postgres
	test -x .venv-latest/bin/python || $(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install -q --disable-pip-version-check "$(TORCH)"
	.venv-latest/bin/python -m pip install -q --disable-pip-version-check --upgrade --upgrade-strategy eager -e ".[test]"
	.venv-latest/bin/python -m pip freeze --exclude-editable > .venv-latest/versions.txt
	.venv-latest/bin/python -m pytest -q

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

# -n auto: one pytest-xdist worker per core, whole test files per worker (module fixtures built once)
test: $(STAMP) browser postgres
	$(PY) -m pytest -q --durations=15 -n auto --dist loadfile

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -n auto --dist loadfile

clean:
	rm -rf $(VENV) .venv-latest build *.egg-info src/*.egg-info
