# The README's two promises: `make demo` and `make test`. Both do their own set-up.
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test lint check unit bench clean

setup:
	@tools/setup.sh

lint: setup
	$(VENV)/bin/ruff check provision kickstart burnin tests bench
	$(VENV)/bin/ruff format --check provision kickstart burnin tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/vermin --no-tips --violations --eval-annotations --target=3.9- burnin

test: lint
	$(PY) -m pytest

demo: setup
	tools/demo.sh

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
