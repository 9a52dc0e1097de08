"""``CatalogResource`` inside Dagster: a tiny asset materialised in process uses a manifest catalog.

No ``from __future__ import annotations`` here: Dagster reads the asset's parameter annotations
(context and resources) as classes.
"""

import socket
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import AssetExecutionContext, DagsterInstance, MaterializeResult, asset, materialize

from floe_dagster import CatalogResource, load_manifest
from floe_dagster.catalogs.rest import RestCatalogPlugin
from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.plan.builders import build_catalog
from tests.contract.contracts import SMALL, unique
from tests.helpers import copy_demo_project

CANARY = "CANARY-resource-secret-7Hq2"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo manifest (sql catalog ``lakehouse``) plus an unreachable REST catalog with a canary secret."""
    root = copy_demo_project(tmp_path / "project")
    path = root / "manifests" / "manifest.yaml"
    path.write_text(
        path.read_text().replace(
            "computes:\n",
            f"""catalogs:
  remote:
    type: rest
    config:
      uri: http://127.0.0.1:{closed_port()}
      client_id: floe
      client_secret: ${{env:FLOE_TEST_RESOURCE_SECRET}}
      max_retries: 0
computes:
""",
            1,
        )
    )
    monkeypatch.setenv("FLOE_TEST_RESOURCE_SECRET", CANARY)
    return path


def resource(manifest: Path, name: str, plugin_type: str) -> CatalogResource:
    return CatalogResource(manifest_path=str(manifest), environment="dev", name=name, plugin_type=plugin_type)


def test_an_asset_writes_through_the_resource_and_reads_its_health(manifest: Path) -> None:
    ns = unique("resource")

    @asset
    def orders_copy(
        context: AssetExecutionContext, lakehouse: CatalogResource, remote: CatalogResource
    ) -> MaterializeResult:
        plugin = lakehouse.plugin()
        assert plugin is lakehouse.plugin()  # one plugin (one connection) per resource instance
        plugin.create_namespace((ns,))
        plugin.create_table((ns, "orders"), schema=SMALL).append(
            pa.table({"id": [1, 2], "name": ["a", "b"]}, schema=SMALL)
        )
        healthy, down = lakehouse.health_check(timeout=30), remote.health_check(timeout=2)
        context.log.info(f"remote catalog: {down.message}")
        return MaterializeResult(
            metadata={
                "plugin": type(plugin).__name__,
                "lakehouse_status": healthy.status,
                "lakehouse_ms": healthy.response_ms,
                "lakehouse_timeout_s": healthy.details["timeout_s"],
                "remote_status": down.status,
                "remote_message": down.message,
            }
        )

    result = materialize(
        [orders_copy],
        resources={
            "lakehouse": resource(manifest, "lakehouse", "sql"),
            "remote": resource(manifest, "remote", "rest"),
        },
        instance=DagsterInstance.ephemeral(),
    )

    assert result.success
    [materialization] = result.asset_materializations_for_node("orders_copy")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["plugin"] == "SqlCatalogPlugin"
    assert metadata["lakehouse_status"] == "healthy" and 0 <= metadata["lakehouse_ms"] < 10_000
    assert metadata["lakehouse_timeout_s"] == 10.0  # the contract's bound, not the 30 s asked for
    assert metadata["remote_status"] == "unhealthy"

    # What the asset committed is in the catalog, seen by a plugin built from the same manifest entry.
    reader = build_catalog(load_manifest(manifest, environment="dev", check_assignments=False), "lakehouse")
    assert isinstance(reader, SqlCatalogPlugin)
    assert reader.load_table((ns, "orders")).scan().to_arrow().num_rows == 2

    # The secret reached the plugin, and nothing Dagster recorded or showed.
    remote_plugin = resource(manifest, "remote", "rest").plugin()
    assert isinstance(remote_plugin, RestCatalogPlugin)
    assert remote_plugin.config.client_secret is not None
    assert remote_plugin.config.client_secret.get_secret_value() == CANARY
    shown = [str(event) for event in result.all_events] + [str(metadata)]
    shown.append(str(resource(manifest, "remote", "rest")))
    assert not [text for text in shown if CANARY in text]


def test_catalog_resource_is_exported_under_both_names() -> None:
    import floe_dagster
    from floe_dagster.dagster_stage.resources import CatalogResource

    assert floe_dagster.CatalogResource is CatalogResource
    assert "CatalogResource" in floe_dagster.__all__ and "CatalogResource" in dir(floe_dagster)
    fields = set(CatalogResource.model_fields)
    assert fields == {"manifest_path", "environment", "name", "plugin_type"}  # never the entry's config
