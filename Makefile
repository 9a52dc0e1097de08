# The two commands of the README:
#   make demo   install everything, then run the main job on the embedded default
#   make test   install everything, then lint, type-check and run the whole test suite
.PHONY: demo test install lint dev bench clean

VENV_BIN := .venv/bin

install:
	@bash scripts/bootstrap.sh

demo: install
	$(VENV_BIN)/floe demo manifests/manifest.yaml

test: install lint
	$(VENV_BIN)/pytest -q -ra

lint: install
	$(VENV_BIN)/ruff check floe_dagster tests benchmarks definitions.py
	$(VENV_BIN)/ruff format --check floe_dagster tests benchmarks definitions.py
	$(VENV_BIN)/mypy

dev: install
	mkdir -p .floe/dagster_home && touch .floe/dagster_home/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/.floe/dagster_home $(VENV_BIN)/dagster dev -h 127.0.0.1 -p 3000

bench: install
	$(VENV_BIN)/python benchmarks/materialize_overhead.py

clean:
	rm -rf .floe dbt_project/target dbt_project/logs
