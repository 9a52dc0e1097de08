"""A demo project with many generated dbt models (tests and benchmarks/load_dbt_scale.py).

A copy of the demo (manifests/, dbt_project/) whose dbt project gets 3 seeds and ``models``
views, half under models/staging/gen/ (the demo's default compute, ``duckdb``), half under
models/marts/gen/ (``tag:marts`` -> ``duckdb_analytics``): the demo's two compute groups. Each
folder is chains of ten views, the first of each chain reading a seed; every 50th marts view also
reads a staging one (a dependency across groups) and has a ``relationships`` test to it (a test
with a parent in each group); every fifth view has a ``not_null`` test; every hundredth
(counting from 7) is ephemeral (not an asset: its readers depend on what it reads).
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers import copy_demo_project

CHAIN = 10
SEEDS = ("seed_a", "seed_b", "seed_c")
GEN_CONFIG = "      gen:\n        +materialized: view\n        +plugin: null\n"


def generate_project(root: Path, models: int) -> Path:
    """The project at ``root`` (created); returns its manifests/manifest.yaml."""
    copy_demo_project(root)
    project = root / "dbt_project"
    seeds = project / "seeds"
    seeds.mkdir()
    for seed in SEEDS:
        (seeds / f"{seed}.csv").write_text("id,name\n1,a\n2,b\n", encoding="utf-8")
    config = (project / "dbt_project.yml").read_text(encoding="utf-8")
    config = config.replace("    staging:\n", "    staging:\n" + GEN_CONFIG)
    config = config.replace("    marts:\n", "    marts:\n" + GEN_CONFIG)
    (project / "dbt_project.yml").write_text(config, encoding="utf-8")
    half = models // 2
    for area, count in (("staging", half), ("marts", models - half)):
        folder = project / "models" / area / "gen"
        folder.mkdir(parents=True)
        entries = []
        for i in range(count):
            name = f"{area[0]}_{i:05d}"
            parent = SEEDS[(i // CHAIN) % len(SEEDS)] if i % CHAIN == 0 else f"{area[0]}_{i - 1:05d}"
            sql = f"select * from {{{{ ref('{parent}') }}}}\n"
            if i % 100 == 7:
                sql = "{{ config(materialized='ephemeral') }}\n" + sql
            tests = ["not_null"] if i % 5 == 0 else []
            if area == "marts" and i % 50 == 0 and i < half:
                sql += f"union all select * from {{{{ ref('s_{i:05d}') }}}}\n"
                tests.append(f"relationships: {{arguments: {{to: \"ref('s_{i:05d}')\", field: id}}}}")
            (folder / f"{name}.sql").write_text(sql, encoding="utf-8")
            if tests:
                listed = "\n".join(f"          - {t}" for t in tests)
                column = f"    columns:\n      - name: id\n        data_tests:\n{listed}\n"
                entries.append(f"  - name: {name}\n{column}")
        (folder / "_gen.yml").write_text("version: 2\n\nmodels:\n" + "".join(entries), encoding="utf-8")
    return root / "manifests" / "manifest.yaml"
