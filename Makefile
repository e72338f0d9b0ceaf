# Two commands for a fresh machine: `make demo` and `make test` (each installs first).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DURATION ?=
PYTEST_ARGS ?=

.PHONY: install demo test bench lint clean dashboards

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

# The Grafana boards under deploy/ (tests/unit/exporters/test_dashboards.py checks they are current).
THRESHOLDS ?= $(firstword $(wildcard kpi_state/defaults/thresholds.yaml) tests/data/thresholds.yaml)
dashboards: $(STAMP)
	$(BIN)/kpi-pipeline dashboards --out deploy/grafana/dashboards --thresholds $(THRESHOLDS) --currency EUR

clean:
	rm -rf $(VENV) .pytest_cache .kpi-pipeline
