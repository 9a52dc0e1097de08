"""When floe re-parses the dbt project: a changed, added or deleted file makes manifest.json stale."""

from __future__ import annotations

from pathlib import Path

from floe_dagster import load_manifest
from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest


def models(parsed: dict) -> set[str]:
    return {node["name"] for node in parsed["nodes"].values() if node["resource_type"] == "model"}


def test_an_added_then_deleted_model_is_seen_without_touching_anything_else(demo_project: Path) -> None:
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    before = models(prepare_dbt_manifest(loaded))
    audit = demo_project / "dbt_project" / "models" / "marts" / "orders_audit.sql"

    audit.write_text("select 1 as n\n")
    assert models(prepare_dbt_manifest(loaded)) == before | {"orders_audit"}

    audit.unlink()  # changes no file's time, only the folder's
    assert models(prepare_dbt_manifest(loaded)) == before


def test_an_unchanged_project_is_not_parsed_again(demo_project: Path) -> None:
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    prepare_dbt_manifest(loaded)
    manifest_json = demo_project / "dbt_project" / "target" / "manifest.json"
    written = manifest_json.stat().st_mtime_ns
    prepare_dbt_manifest(loaded)
    assert manifest_json.stat().st_mtime_ns == written
