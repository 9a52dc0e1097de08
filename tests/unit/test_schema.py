"""The JSON Schema editors use is generated from the pydantic models and kept in the repo."""

from __future__ import annotations

import json
from pathlib import Path

from floe_dagster.manifest.schema import manifest_json_schema

REPO = Path(__file__).resolve().parents[2]


def test_committed_schema_matches_the_models() -> None:
    committed = json.loads((REPO / "manifests" / "manifest.schema.json").read_text())
    assert committed == manifest_json_schema(), "run: .venv/bin/floe schema > manifests/manifest.schema.json"


def test_schema_describes_every_level_and_forbids_unknown_keys() -> None:
    schema = manifest_json_schema()
    expected = {"apiVersion", "kind", "metadata", "extends", "computes", "environments"}
    assert expected <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"apiVersion", "kind", "metadata"}


def test_demo_manifests_reference_the_schema() -> None:
    for path in ("manifest.yaml", "enterprise.yaml", "domains/commerce.yaml"):
        first = (REPO / "manifests" / path).read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
