"""Contract test base classes: every plugin's test subclasses one and passes all of it.

A subclass provides fixtures (``catalog``, ``compute`` + ``compute_config``, ``metastore`` +
``existing_table``); the assertions here are the contract of DESIGN.md.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from floe_dagster.plugins import (
    CatalogPlugin,
    ComputePlugin,
    ConfigurationError,
    ConflictError,
    ConnectionResult,
    DbtProfileContext,
    FloeError,
    MetastoreConnector,
    NotFoundError,
    NotSupportedError,
    ResourceSpec,
    Table,
    VendedCredentials,
)
from floe_dagster.plugins.metastore import Capability

SMALL = pa.schema([("id", pa.int64()), ("name", pa.string())])


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


class CatalogContract:
    @pytest.fixture
    def catalog(self) -> CatalogPlugin:
        raise NotImplementedError

    def test_namespaces_create_list_delete(self, catalog: CatalogPlugin) -> None:
        ns = (unique("ns"),)
        catalog.create_namespace(ns, {"owner": "contract"})
        assert ns in catalog.list_namespaces()
        with pytest.raises(ConflictError) as info:
            catalog.create_namespace(ns)
        assert info.value.provider == catalog.type_name and info.value.operation == "create_namespace"
        catalog.delete_namespace(ns)
        assert ns not in catalog.list_namespaces()

    def test_tables_create_list_drop(self, catalog: CatalogPlugin) -> None:
        ns = (unique("ns"),)
        catalog.create_namespace(ns)
        identifier = (*ns, "t")
        table = catalog.create_table(identifier, schema=SMALL)
        table.append(pa.table({"id": [1, 2], "name": ["a", "b"]}, schema=SMALL))
        assert identifier in catalog.list_tables(ns)
        assert catalog.load_table(identifier).scan().to_arrow().num_rows == 2
        with pytest.raises(ConflictError):
            catalog.create_table(identifier, schema=SMALL)
        with pytest.raises(ConflictError):
            catalog.delete_namespace(ns)  # not empty
        catalog.drop_table(identifier, purge=False)
        assert identifier not in catalog.list_tables(ns)
        with pytest.raises(NotFoundError) as info:
            catalog.drop_table(identifier)
        assert info.value.retryable is False
        catalog.delete_namespace(ns)

    def test_health_check_reports_milliseconds(self, catalog: CatalogPlugin) -> None:
        health = catalog.health_check(timeout=5)
        assert health.status == "healthy", health.message
        assert 0 <= health.response_ms < 5000

    def test_vended_credentials_are_bounded_or_not_supported(self, catalog: CatalogPlugin) -> None:
        ns = (unique("ns"),)
        catalog.create_namespace(ns)
        catalog.create_table((*ns, "t"), schema=SMALL)
        try:
            creds = catalog.vend_credentials((*ns, "t"), ["read"])
        except NotSupportedError as exc:
            assert exc.provider == catalog.type_name and exc.operation == "vend_credentials"
            return
        assert isinstance(creds, VendedCredentials)
        assert creds.expiration is not None
        assert datetime.now(UTC) < creds.expiration <= datetime.now(UTC) + timedelta(hours=24)


class ComputeContract:
    @pytest.fixture
    def compute(self) -> ComputePlugin:
        raise NotImplementedError

    @pytest.fixture
    def compute_config(self):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    @pytest.fixture
    def profile_context(self, tmp_path) -> DbtProfileContext:  # type: ignore[no-untyped-def]
        return DbtProfileContext(
            "c", str(tmp_path / "manifest.yaml"), "dev", str(tmp_path / "state"), (), None
        )

    def test_profile_is_one_dbt_output_of_its_adapter(self, compute, compute_config, profile_context) -> None:  # type: ignore[no-untyped-def]
        output = compute.generate_dbt_profile(compute_config, profile_context)
        assert output["type"] == compute.dbt_adapter_type
        assert "outputs" not in output and "target" not in output

    def test_required_packages_name_the_adapter(self, compute: ComputePlugin) -> None:
        packages = compute.get_required_dbt_packages()
        assert packages and any(compute.dbt_adapter_type in p for p in packages)

    def test_presets_and_unknown_size(self, compute: ComputePlugin) -> None:
        for size in ("small", "medium", "large"):
            spec = compute.get_resource_requirements(size)
            assert isinstance(spec, ResourceSpec)
            assert set(spec.as_k8s()) == {"requests", "limits"}
        with pytest.raises(ConfigurationError) as info:
            compute.get_resource_requirements("gigantic")
        assert "small" in str(info.value) and "large" in str(info.value)

    def test_validate_connection_measures_latency(self, compute, compute_config) -> None:  # type: ignore[no-untyped-def]
        result = compute.validate_connection(compute_config)
        assert isinstance(result, ConnectionResult)
        assert result.status == "ok", result.message
        assert result.latency_ms > 0

    def test_config_exports_json_schema(self, compute: ComputePlugin) -> None:
        schema = compute.config_json_schema()
        assert schema["type"] == "object" and schema["properties"]


class MetastoreContract:
    @pytest.fixture
    def metastore(self) -> MetastoreConnector:
        raise NotImplementedError

    @pytest.fixture
    def existing_table(self) -> tuple[str, str]:
        raise NotImplementedError

    def test_lists_namespaces_and_tables(self, metastore, existing_table) -> None:  # type: ignore[no-untyped-def]
        namespace, name = existing_table
        assert namespace in metastore.list_namespaces()
        assert name in metastore.list_tables(namespace)

    def test_get_table_is_a_valid_neutral_table(self, metastore, existing_table) -> None:  # type: ignore[no-untyped-def]
        table = metastore.get_table(*existing_table)
        assert isinstance(table, Table)
        assert table.validate() is table
        assert (table.namespace, table.name) == existing_table
        assert table.storage.columns and table.data_version

    def test_batch_get_equals_single_gets(self, metastore, existing_table) -> None:  # type: ignore[no-untyped-def]
        namespace, _ = existing_table
        names = sorted(metastore.list_tables(namespace))
        assert metastore.get_tables(namespace, names) == [metastore.get_table(namespace, n) for n in names]

    def test_data_version_is_stable_without_change(self, metastore, existing_table) -> None:  # type: ignore[no-untyped-def]
        assert (
            metastore.get_table(*existing_table).data_version
            == metastore.get_table(*existing_table).data_version
        )

    def test_missing_table_is_tagged_not_found(self, metastore, existing_table) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(NotFoundError) as info:
            metastore.get_table(existing_table[0], "no_such_table_here")
        assert info.value.provider == metastore.type_name
        assert info.value.operation == "get_table"
        assert info.value.retryable is False

    def test_unsupported_operations_raise_tagged_errors(self, metastore, existing_table) -> None:  # type: ignore[no-untyped-def]
        if Capability.LIST_PARTITIONS in metastore.capabilities:
            assert isinstance(metastore.list_partitions(*existing_table), list)
            return
        with pytest.raises(NotSupportedError) as info:
            metastore.list_partitions(*existing_table)
        assert (info.value.provider, info.value.operation) == (metastore.type_name, "list_partitions")


def assert_is_floe_error(exc: BaseException) -> None:
    assert isinstance(exc, FloeError), f"{type(exc).__name__} escaped the plugin edge unmapped"
