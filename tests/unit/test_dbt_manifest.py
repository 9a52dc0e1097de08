"""When floe re-parses the dbt project: a changed, added or deleted file makes manifest.json stale."""

from __future__ import annotations

import json
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


def dbt_log(project: Path) -> str:
    log = project / "dbt_project" / "logs" / "dbt.log"
    return log.read_text(encoding="utf-8") if log.exists() else ""


def parse_files(project: Path) -> dict[str, int]:
    """Every file of every environment's and target's dbt parse, with its modification time."""
    folder = project / ".floe" / "dbt_parse"
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.glob("*/*") if p.is_file()}


def test_switching_env_back_and_forth_re_parses_nothing_that_did_not_change(demo_project: Path) -> None:
    manifest = demo_project / "manifests" / "manifest.yaml"
    dev, prod = load_manifest(manifest, environment="dev"), load_manifest(manifest, environment="prod")
    target = demo_project / "dbt_project" / "target"
    prepare_dbt_manifest(prod)
    prepare_dbt_manifest(dev)  # each environment parsed once, into a folder of its own
    folders = sorted(p.name.rsplit("--", 1)[0] for p in (demo_project / ".floe" / "dbt_parse").iterdir())
    assert folders == ["dev--duckdb", "prod--duckdb"]
    parsed, log = parse_files(demo_project), dbt_log(demo_project)

    for loaded in (prod, dev, prod, dev):
        prepare_dbt_manifest(loaded)
        stamp = json.loads((target / "floe_parse.json").read_text(encoding="utf-8"))
        assert stamp["key"]["environment"] == loaded.environment  # target/ holds this env's parse
    assert parse_files(demo_project) == parsed, "a switch of --env ran dbt parse again"
    assert dbt_log(demo_project) == log, "dbt ran although nothing changed"

    added = demo_project / "dbt_project" / "models" / "marts" / "orders_audit.sql"
    added.write_text("select 1 as n\n")
    for loaded in (prod, dev):
        assert "orders_audit" in models(prepare_dbt_manifest(loaded))
    since = dbt_log(demo_project)[len(log) :]
    assert since.count("Running with dbt=") == 2, since  # one parse per environment...
    assert "Unable to do partial parsing" not in since, since  # ...each of them partial
