# The two commands of the README:
#   make demo   install everything, then run the main job on the embedded default
#   make test   install everything, then lint, type-check and run the whole test suite
.PHONY: demo test install lint dev pools bench clean

VENV_BIN := .venv/bin

install:
	@bash scripts/bootstrap.sh

demo: install
	$(VENV_BIN)/floe demo manifests/manifest.yaml

# Two workers (each module's tests on one of them, so its module-scoped servers start once; the
# session's servers once per worker) and the 20 slowest tests printed at the end.
test: install lint
	$(VENV_BIN)/pytest -q -ra -n 2 --dist loadscope --durations=20

lint: install
	$(VENV_BIN)/ruff check floe_dagster tests benchmarks definitions.py
	$(VENV_BIN)/ruff format --check floe_dagster tests benchmarks definitions.py
	$(VENV_BIN)/mypy
	$(VENV_BIN)/lint-imports

# Dagster keeps per-pool limits in the instance, not in dagster.yaml: `floe pools` sets each
# compute's pool limit (a DuckDB file: 1) on the instance before the UI starts.
DEV_HOME := $(CURDIR)/.floe/dagster_home
DEV_MANIFEST := $(or $(FLOE_MANIFEST),manifests/manifest.yaml)
# the UI's port: `DEV_PORT=3001 make dev` for another one
DEV_PORT ?= 3000

pools: install
	mkdir -p $(DEV_HOME) && touch $(DEV_HOME)/dagster.yaml
	DAGSTER_HOME=$(DEV_HOME) $(VENV_BIN)/floe pools $(DEV_MANIFEST)

# The code location is definitions.py, named explicitly (plain `dagster dev` and `dg dev` from this
# folder load the same file through [tool.dagster] / [tool.dg] in pyproject.toml).
dev: pools
	DAGSTER_HOME=$(DEV_HOME) $(VENV_BIN)/dagster dev -f definitions.py -h 127.0.0.1 -p $(DEV_PORT)

bench: install
	$(VENV_BIN)/python benchmarks/materialize_overhead.py

clean:
	rm -rf .floe dbt_project/target dbt_project/logs
