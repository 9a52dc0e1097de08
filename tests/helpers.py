"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import functools
import shutil
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def copy_demo_project(destination: Path, parsed_from: Path | None = None) -> Path:
    """manifests/, dbt_project/ and definitions.py copied to ``destination`` (no local state).

    With ``parsed_from`` (an earlier copy whose dbt project was parsed), its dbt manifest is
    reused with paths rewritten, which saves a `dbt parse` per test.
    """
    shutil.copytree(REPO / "manifests", destination / "manifests")
    shutil.copytree(
        REPO / "dbt_project", destination / "dbt_project", ignore=shutil.ignore_patterns("target", "logs")
    )
    shutil.copy(REPO / "definitions.py", destination / "definitions.py")
    if parsed_from is not None:
        source = parsed_from / "dbt_project" / "target" / "manifest.json"
        target = destination / "dbt_project" / "target" / "manifest.json"
        target.parent.mkdir(parents=True)
        target.write_text(source.read_text().replace(str(parsed_from), str(destination)))
    return destination


@functools.cache
def bronze_translator() -> type:
    """A ``FloeSourceTranslator`` subclass that re-keys, regroups, tags and describes every
    metastore table (``bronze/<metastore>/<table>``); tests and defs.yaml
    (``translator: tests.helpers.BronzeTranslator``) use it."""
    from floe_dagster import FloeSourceTranslator, SourceTable

    class BronzeTranslator(FloeSourceTranslator):
        def get_asset_spec(self, table: SourceTable) -> Any:
            from dagster import AssetKey

            spec = super().get_asset_spec(table)
            return spec.replace_attributes(
                key=AssetKey(["bronze", table.metastore, table.name]),
                group_name="bronze",
                description=f"Bronze copy of {table.qualified_name}",
            ).merge_attributes(
                tags={"layer": "bronze"},
                metadata={
                    "owner_team": "data-eng",
                    "read_by_dbt": table.dbt_source["unique_id"] if table.dbt_source else "-",
                },
            )

    return BronzeTranslator


def __getattr__(name: str) -> Any:
    if name == "BronzeTranslator":  # built on first use: importing helpers must not import dagster
        return bronze_translator()
    raise AttributeError(name)
