"""Contract test base classes: every plugin's test subclasses one and passes all of it.

A subclass provides fixtures (``catalog``, ``compute`` + ``compute_config``, ``metastore`` +
``existing_table``); the assertions here are the contract of DESIGN.md.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

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


def assert_is_floe_error(exc: BaseException) -> None:
    assert isinstance(exc, FloeError), f"{type(exc).__name__} escaped the plugin edge unmapped: {exc!r}"


class CatalogContract:
    """The catalog contract, run against every catalog plugin.

    Where catalogs legitimately differ, the subclass states what its catalog does, and the
    contract asserts exactly that (there is no default, so a new subclass must decide):

    * ``nested_namespaces``: ``True`` if namespaces nest (``list_namespaces(parent)`` lists the
      children), ``False`` if they are one level and nesting raises ``NotSupportedError``;
    * ``vends_credentials``: ``True`` if ``vend_credentials`` returns credentials (bounded to 24 h),
      ``False`` if it raises ``NotSupportedError``.
    """

    nested_namespaces: ClassVar[bool]
    vends_credentials: ClassVar[bool]

    @pytest.fixture
    def catalog(self) -> CatalogPlugin:
        raise NotImplementedError

    def declared(self, name: str) -> bool:
        value = getattr(type(self), name, None)
        assert isinstance(value, bool), f"{type(self).__name__} must declare {name} = True or False"
        return value

    def test_namespaces_create_list_delete(self, catalog: CatalogPlugin) -> None:
        ns = (unique("ns"),)
        catalog.create_namespace(ns, {"owner": "contract"})
        assert ns in catalog.list_namespaces()
        with pytest.raises(ConflictError) as info:
            catalog.create_namespace(ns)
        assert_tagged(info.value, catalog, "create_namespace")
        catalog.delete_namespace(ns)
        assert ns not in catalog.list_namespaces()

    def test_namespace_properties_are_read_back(self, catalog: CatalogPlugin) -> None:
        ns = (unique("ns"),)
        properties = {"owner": "contract", "comment": "read back"}
        catalog.create_namespace(ns, properties)
        read = catalog.load_namespace_properties(ns)
        # the catalog may add its own (a location, ...), never lose or change ours
        assert {key: read.get(key) for key in properties} == properties
        catalog.delete_namespace(ns)

    def test_a_missing_namespace_is_not_found(self, catalog: CatalogPlugin) -> None:
        missing = (unique("missing"),)
        calls = {
            "delete_namespace": lambda: catalog.delete_namespace(missing),
            "load_namespace_properties": lambda: catalog.load_namespace_properties(missing),
            "list_tables": lambda: catalog.list_tables(missing),
            "drop_table": lambda: catalog.drop_table((*missing, "t")),
        }
        for operation, call in calls.items():
            with pytest.raises(Exception) as info:
                call()
            assert_is_floe_error(info.value)
            assert isinstance(info.value, NotFoundError), f"{operation}: {info.value!r}"
            assert_tagged(info.value, catalog, operation)
            assert info.value.retryable is False

    def test_nested_namespaces_as_declared(self, catalog: CatalogPlugin) -> None:
        if self.declared("nested_namespaces"):
            self.check_nested_namespaces(catalog)
        else:
            self.check_nesting_is_not_supported(catalog)

    def check_nested_namespaces(self, catalog: CatalogPlugin) -> None:
        parent = (unique("parent"),)
        child = (*parent, "child")
        catalog.create_namespace(parent, {"level": "parent"})
        catalog.create_namespace(child, {"level": "child"})
        catalog.create_table((*child, "t"), schema=SMALL)

        assert catalog.list_namespaces(parent) == [child]
        assert catalog.list_namespaces(child) == []
        top = catalog.list_namespaces()
        assert parent in top and child not in top
        assert catalog.load_namespace_properties(child)["level"] == "child"
        assert catalog.load_namespace_properties(parent)["level"] == "parent"
        assert catalog.list_tables(child) == [(*child, "t")]
        assert catalog.list_tables(parent) == []  # tables are listed per namespace, not recursively

        with pytest.raises(ConflictError) as info:
            catalog.delete_namespace(parent)  # it has a child namespace
        assert_tagged(info.value, catalog, "delete_namespace")
        catalog.drop_table((*child, "t"))
        catalog.delete_namespace(child)
        assert catalog.list_namespaces(parent) == []
        catalog.delete_namespace(parent)
        assert parent not in catalog.list_namespaces()
        with pytest.raises(NotFoundError) as missing:
            catalog.list_namespaces(parent)
        assert_tagged(missing.value, catalog, "list_namespaces")

    def check_nesting_is_not_supported(self, catalog: CatalogPlugin) -> None:
        parent = (unique("parent"),)
        with pytest.raises(NotSupportedError) as info:
            catalog.create_namespace((*parent, "child"))
        assert_tagged(info.value, catalog, "create_namespace")
        assert "one level" in info.value.message
        assert parent not in catalog.list_namespaces()  # nothing was created on the way

        catalog.create_namespace(parent)
        with pytest.raises(NotSupportedError) as listing:
            catalog.list_namespaces(parent)  # never a silent empty list
        assert_tagged(listing.value, catalog, "list_namespaces")
        catalog.delete_namespace(parent)

    def test_partitioned_table_with_location_and_properties(self, catalog: CatalogPlugin) -> None:
        from pyiceberg.partitioning import PartitionField, PartitionSpec
        from pyiceberg.schema import Schema
        from pyiceberg.transforms import IdentityTransform
        from pyiceberg.types import LongType, NestedField, StringType

        ns = (unique("ns"),)
        catalog.create_namespace(ns)
        location = sibling_location(catalog, ns)
        schema = Schema(
            NestedField(1, "id", LongType(), required=False),
            NestedField(2, "region", StringType(), required=False),
            NestedField(3, "kind", StringType(), required=False),
        )
        # identity transforms only: the others need the optional pyiceberg-core package to write
        spec = PartitionSpec(
            PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="region_part"),
            PartitionField(source_id=3, field_id=1001, transform=IdentityTransform(), name="kind"),
        )
        properties = {"floe.contract": "partitioned", "write.parquet.compression-codec": "zstd"}
        identifier = (*ns, "events")

        created = catalog.create_table(
            identifier, schema=schema, partition_spec=spec, location=location, properties=properties
        )
        for table in (created, catalog.load_table(identifier)):
            assert spec_fields(table) == [("region_part", "identity", "region"), ("kind", "identity", "kind")]
            assert table.location() == location
            assert {key: table.properties.get(key) for key in properties} == properties

        rows = {"id": [1, 2, 3], "region": ["eu", "us", "eu"], "kind": ["a", "a", "b"]}
        created.append(pa.table(rows, schema=schema.as_arrow()))
        files = catalog.load_table(identifier).inspect.files()
        paths = files.column("file_path").to_pylist()
        assert len(paths) == 3 and all(path.startswith(f"{location}/data/") for path in paths), paths
        partitions = {(p["region_part"], p["kind"]) for p in files.column("partition").to_pylist()}
        assert partitions == {("eu", "a"), ("us", "a"), ("eu", "b")}
        catalog.drop_table(identifier)
        catalog.delete_namespace(ns)

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

    def test_vended_credentials_as_declared(self, catalog: CatalogPlugin) -> None:
        ns = (unique("ns"),)
        catalog.create_namespace(ns)
        catalog.create_table((*ns, "t"), schema=SMALL)
        if not self.declared("vends_credentials"):
            with pytest.raises(NotSupportedError) as info:
                catalog.vend_credentials((*ns, "t"), ["read"])
            assert_tagged(info.value, catalog, "vend_credentials")
            return
        creds = catalog.vend_credentials((*ns, "t"), ["read"])
        assert isinstance(creds, VendedCredentials)
        assert creds.access_key_id and creds.secret_access_key.get_secret_value()
        assert creds.expiration is not None
        assert datetime.now(UTC) < creds.expiration <= datetime.now(UTC) + timedelta(hours=24)


def sibling_location(catalog: CatalogPlugin, namespace: tuple[str, ...]) -> str:
    """A table location of our own choosing that the catalog accepts: beside its default one.

    Catalogs restrict where tables may live (Polaris: the catalog's allowed locations; Glue: S3),
    so the contract asks the catalog where a table would go and picks a sibling of that folder.
    """
    probe = catalog.create_table((*namespace, "probe"), schema=SMALL)
    default = probe.location().rstrip("/")
    catalog.drop_table((*namespace, "probe"))
    return f"{default.rsplit('/', 1)[0]}/{unique('elsewhere')}"


def spec_fields(table: Any) -> list[tuple[str, str, str]]:
    """(partition name, transform, source column) of each partition field (ids are reassigned)."""
    schema = table.schema()
    return [(f.name, str(f.transform), schema.find_column_name(f.source_id)) for f in table.spec().fields]


def assert_tagged(error: FloeError, catalog: CatalogPlugin, operation: str) -> None:
    assert (error.provider, error.operation) == (catalog.type_name, operation), repr(error)


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
