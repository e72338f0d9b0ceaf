# Two commands for a fresh machine: `make demo` and `make test` (each installs first).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DURATION ?=
PYTEST_ARGS ?=

.PHONY: install demo test unit soak bench lint clean dashboards

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kpi-pipeline demo $(if $(DURATION),--duration $(DURATION))

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast loop: unit tests only (no broker, no Redis).
unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/oracle -q -m "not slow" -n 2 $(PYTEST_ARGS)

# The crash tests again and again, with other traffic and kill points each time.
SOAK_RUNS ?= 20
soak: $(STAMP)
	@for seed in $$(seq 1 $(SOAK_RUNS)); do \
	  echo "== soak run $$seed/$(SOAK_RUNS)"; \
	  KPI_TEST_SEED=$$seed $(BIN)/python -m pytest -q tests/integration/test_crash_recovery.py $(PYTEST_ARGS) || exit 1; \
	done

# The benchmark of issue 11 (docs/BENCHMARKS.md); e.g. make bench BENCH_ARGS="--only a,b --events 20000".
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/kpi-pipeline bench $(BENCH_ARGS)

# The Grafana boards under deploy/ (tests/unit/exporters/test_dashboards.py checks they are current).
THRESHOLDS ?= $(firstword $(wildcard kpi_state/defaults/thresholds.yaml) tests/data/thresholds.yaml)
dashboards: $(STAMP)
	$(BIN)/kpi-pipeline dashboards --out deploy/grafana/dashboards --thresholds $(THRESHOLDS) --currency EUR
	$(BIN)/kpi-pipeline rules $(THRESHOLDS) -o deploy/prometheus/rules/kpi-rules.yml

clean:
	rm -rf $(VENV) .pytest_cache .kpi-pipeline
