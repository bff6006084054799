# The README's two commands are `make demo` and `make test`; both set everything up first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test lint demo chaos bench clean

setup:
	@bash tools/setup.sh

# the static checks first (import contracts, ruff, mypy: tools/lint.sh, a few seconds); any failure stops here
test: setup
	bash tools/lint.sh
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	bash tools/lint.sh

demo: setup
	$(PY) -m kmf demo

chaos: setup
	KMF_CHAOS_FULL=1 $(PY) -m pytest tests/chaos tests/integration/streams/test_wordcount_cluster.py tests/integration/e2e/test_kafka_upgrade.py tests/integration/e2e/test_zk_to_kraft_migration.py tests/integration/e2e/test_cert_renewal.py tests/integration/e2e/test_ca_rotation.py tests/integration/apache/test_demo_apache.py tests/integration/e2e/test_crash_and_uninstall.py -s $(PYTEST_ARGS)

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .cache .pytest_cache .hypothesis .mypy_cache .ruff_cache .import_linter_cache
