"""The built-in plugins pass their contracts; incomplete plugins fail loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from floe_dagster.catalogs.sql import SqlCatalogConfig, SqlCatalogPlugin
from floe_dagster.computes.duckdb import DuckDBComputePlugin, DuckDBConfig
from floe_dagster.metastores.iceberg import IcebergMetastoreConfig, IcebergMetastoreConnector
from floe_dagster.plugins import ComputePlugin, ConflictError
from tests.contract.contracts import SMALL, CatalogContract, ComputeContract, MetastoreContract


def sqlite_catalog(tmp_path: Path) -> SqlCatalogPlugin:
    config = SqlCatalogConfig.model_validate(
        {"uri": "sqlite:///catalog.db", "warehouse": "warehouse"}, context={"base_dir": tmp_path}
    )
    return SqlCatalogPlugin("contract", config)


class TestSqlCatalogOnSqlite(CatalogContract):
    nested_namespaces = True
    vends_credentials = False

    @pytest.fixture
    def catalog(self, tmp_path: Path) -> SqlCatalogPlugin:
        return sqlite_catalog(tmp_path)


class TestDuckDBCompute(ComputeContract):
    """A database file not created yet: its folder is checked, the rest runs in memory."""

    @pytest.fixture
    def compute(self) -> DuckDBComputePlugin:
        return DuckDBComputePlugin()

    @pytest.fixture
    def compute_config(self, tmp_path: Path) -> DuckDBConfig:
        return DuckDBConfig.model_validate(
            {"path": "db.duckdb", "threads": 1}, context={"base_dir": tmp_path}
        )


class TestDuckDBComputeOnAnExistingFile(TestDuckDBCompute):
    """The file exists: opened read-only, with every field applied and a file attached."""

    @pytest.fixture
    def compute_config(self, tmp_path: Path) -> DuckDBConfig:
        import duckdb

        for name in ("db.duckdb", "other.duckdb"):
            duckdb.connect(str(tmp_path / name)).close()
        return DuckDBConfig.model_validate(
            {
                "path": "db.duckdb",
                "threads": 1,
                "memory_limit": "512MB",
                "settings": {"preserve_insertion_order": False},
                "attach": [{"path": "other.duckdb", "alias": "other"}],
            },
            context={"base_dir": tmp_path},
        )


class TestIcebergMetastore(MetastoreContract):
    @pytest.fixture
    def catalog(self, tmp_path: Path) -> SqlCatalogPlugin:
        catalog = sqlite_catalog(tmp_path)
        catalog.create_namespace(("raw",))
        for name in ("a", "b", "c"):
            catalog.create_table(("raw", name), schema=SMALL).append(SMALL.empty_table())
        return catalog

    @pytest.fixture
    def metastore(self, catalog: SqlCatalogPlugin) -> IcebergMetastoreConnector:
        return IcebergMetastoreConnector("lake", IcebergMetastoreConfig(catalog="contract"), catalog=catalog)

    @pytest.fixture
    def existing_table(self) -> tuple[str, str]:
        return ("raw", "b")


def test_health_check_timeout_is_capped_at_10_seconds(tmp_path: Path) -> None:
    catalog = sqlite_catalog(tmp_path)
    capped = catalog.health_check(timeout=30)
    assert capped.healthy and capped.details["timeout_s"] == 10.0
    assert capped.message == "namespace listing answered (timeout 10s)"
    short = catalog.health_check(timeout=0.5)
    assert short.details["timeout_s"] == 0.5 and "(timeout 0.5s)" in short.message


def test_sql_catalog_namespaces_nest_in_pyiceberg_0_12(tmp_path: Path) -> None:
    """What PyIceberg 0.12's SqlCatalog does with nested namespaces, and where the plugin steps in."""
    catalog = sqlite_catalog(tmp_path)
    catalog.create_namespace(("a", "b", "c"))  # no parent needed: parents exist implicitly ...
    assert ("a",) in catalog.list_namespaces()
    assert catalog.list_namespaces(("a",)) == [("a", "b")]  # ... one level of children at a time
    assert catalog.list_namespaces(("a", "b")) == [("a", "b", "c")]
    assert catalog.load_namespace_properties(("a", "b", "c")) == {"exists": "true"}
    # SqlCatalog would "drop" the implicit parent and keep listing it; the plugin refuses, naming the child.
    with pytest.raises(ConflictError, match="child namespaces: a.b.c"):
        catalog.delete_namespace(("a", "b"))
    catalog.delete_namespace(("a", "b", "c"))
    assert catalog.list_namespaces() == []  # implicit parents go with their last child


def test_incomplete_plugin_fails_at_instantiation_naming_the_method() -> None:
    class HalfDone(ComputePlugin):
        type_name = "half"

        def generate_dbt_profile(self, config, context):  # type: ignore[no-untyped-def]
            return {}

    with pytest.raises(TypeError) as info:
        HalfDone()  # type: ignore[abstract]
    assert "validate_connection" in str(info.value)


def test_iceberg_metastore_prunes_partitions_of_a_partitioned_table(tmp_path: Path) -> None:
    import pyarrow as pa
    from pyiceberg.partitioning import PartitionField as IcebergPartitionField
    from pyiceberg.partitioning import PartitionSpec as IcebergPartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.types import LongType, NestedField, StringType

    from floe_dagster.plugins.table_model import PartitionPredicate

    catalog = sqlite_catalog(tmp_path)
    catalog.create_namespace(("raw",))
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "region", StringType(), required=False),
    )
    spec = IcebergPartitionSpec(IcebergPartitionField(2, 1000, IdentityTransform(), "region"))
    table = catalog.create_table(("raw", "sales"), schema=schema, partition_spec=spec)
    table.append(pa.table({"id": [1, 2, 3], "region": ["eu", "us", "apac"]}))
    connector = IcebergMetastoreConnector("lake", IcebergMetastoreConfig(catalog="contract"), catalog=catalog)

    assert sorted(p.values for p in connector.list_partitions("raw", "sales")) == [
        ("apac",),
        ("eu",),
        ("us",),
    ]
    pruned = connector.list_partitions("raw", "sales", [PartitionPredicate("region", "in", ("eu", "us"))])
    assert sorted(p.values for p in pruned) == [("eu",), ("us",)]
    assert connector.get_table("raw", "sales").partition_spec.names == ("region",)
