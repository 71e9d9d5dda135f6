# ssr_ros — two commands: `make demo` and `make test`. Both set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test demo clean benchmark

setup:
	@scripts/setup_env.sh $(VENV)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/ssr demo --out out/demo

benchmark: setup
	$(PY) benchmarks/bench_integration.py

clean:
	rm -rf build $(VENV) .pytest_cache
