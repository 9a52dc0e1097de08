"""The Hive catalog plugin against a real Hive Metastore (Hive 2.3 from the pyspark jars)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from floe_dagster.catalogs.hive import HiveCatalogConfig, HiveCatalogPlugin
from floe_dagster.plugins import (
    ConfigurationError,
    ConflictError,
    NotFoundError,
    NotSupportedError,
    UnavailableError,
    get_plugin_class,
)
from tests.contract.contracts import SMALL, CatalogContract, unique
from tests.fixtures.hive_metastore import HiveMetastore

pytestmark = pytest.mark.server


def hive_catalog(raw: dict[str, Any], base_dir: Path | None = None) -> HiveCatalogPlugin:
    config = HiveCatalogConfig.model_validate(raw, context={"base_dir": base_dir} if base_dir else None)
    return HiveCatalogPlugin("contract", config)


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestHiveCatalog(CatalogContract):
    nested_namespaces = False  # Hive Metastore databases are one level
    vends_credentials = False  # the metastore vends no credentials

    @pytest.fixture
    def catalog(self, hive_metastore: HiveMetastore) -> HiveCatalogPlugin:
        return hive_catalog({"uri": hive_metastore.uri, "warehouse": hive_metastore.warehouse_uri})


def test_fixture_is_a_real_metastore_with_plain_hive_tables(hive_metastore: HiveMetastore) -> None:
    from hive_metastore.ttypes import Database, FieldSchema, SerDeInfo, StorageDescriptor, Table

    client = hive_metastore.client()
    db = unique("plain")
    client.create_database(Database(name=db, description="plain hive", parameters={}))
    columns = [FieldSchema("id", "bigint", None), FieldSchema("name", "string", None)]
    client.create_table(
        Table(
            tableName="events",
            dbName=db,
            owner="floe",
            tableType="MANAGED_TABLE",
            partitionKeys=[FieldSchema("ds", "string", None)],
            parameters={"comment": "not iceberg"},
            sd=StorageDescriptor(
                cols=columns,
                inputFormat="org.apache.hadoop.mapred.TextInputFormat",
                outputFormat="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                serdeInfo=SerDeInfo(
                    serializationLib="org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                    parameters={"field.delim": ","},
                ),
            ),
        )
    )
    client.append_partition(db, "events", ["2024-01-01"])

    table = client.get_table(db, "events")
    assert table.tableType == "MANAGED_TABLE"
    assert [c.name for c in table.sd.cols] == ["id", "name"]
    assert [k.name for k in table.partitionKeys] == ["ds"]
    assert table.sd.serdeInfo.serializationLib.endswith("LazySimpleSerDe")
    # The metastore assigned a location in its warehouse and created the folders (file:/x, not file:///x).
    assert Path(table.sd.location.removeprefix("file:")) == hive_metastore.warehouse / f"{db}.db" / "events"
    assert (hive_metastore.warehouse / f"{db}.db" / "events" / "ds=2024-01-01").is_dir()
    assert client.get_partition_names(db, "events", -1) == ["ds=2024-01-01"]
    assert len(client.get_partitions_by_filter(db, "events", 'ds = "2024-01-01"', -1)) == 1
    assert client.get_all_tables(db) == ["events"]

    # A plain Hive table is no Iceberg table: the plugin does not list it and refuses to load it.
    plugin = hive_catalog({"uri": hive_metastore.uri})
    assert plugin.list_tables((db,)) == []
    with pytest.raises(NotFoundError):
        plugin.load_table((db, "events"))


def test_namespace_location_follows_the_configured_warehouse(
    hive_metastore: HiveMetastore,
    tmp_path: Path,
) -> None:
    catalog = hive_catalog({"uri": hive_metastore.uri, "warehouse": "lake"}, base_dir=tmp_path)
    ns = (unique("loc"),)
    catalog.create_namespace(ns)
    table = catalog.create_table((*ns, "t"), schema=SMALL)
    table.append(pa.table({"id": [1], "name": ["a"]}, schema=SMALL))
    assert (tmp_path / "lake" / f"{ns[0]}.db" / "t" / "metadata").is_dir()
    assert list((tmp_path / "lake" / f"{ns[0]}.db" / "t" / "data").glob("*.parquet"))

    # Without a warehouse the metastore's own warehouse folder decides.
    bare = hive_catalog({"uri": hive_metastore.uri})
    other = (unique("hms"),)
    bare.create_namespace(other)
    bare.create_table((*other, "t"), schema=SMALL).append(SMALL.empty_table())
    assert (hive_metastore.warehouse / f"{other[0]}.db" / "t" / "metadata").is_dir()


def test_hive2_compatible_lets_timestamptz_tables_commit(hive_metastore: HiveMetastore) -> None:
    schema = pa.schema([("id", pa.int64()), ("at", pa.timestamp("us", tz="UTC"))])
    rows = pa.table({"id": [1], "at": pa.array([0], pa.timestamp("us", tz="UTC"))}, schema=schema)
    ns = (unique("tz"),)

    strict = hive_catalog({"uri": hive_metastore.uri, "warehouse": hive_metastore.warehouse_uri})
    strict.create_namespace(ns)
    with pytest.raises(Exception) as info:  # Hive 2.3 rejects 'timestamp with local time zone'
        strict.create_table((*ns, "strict"), schema=schema).append(rows)
    assert "timestamp with local time zone" in str(info.value)

    compatible = hive_catalog(
        {"uri": hive_metastore.uri, "warehouse": hive_metastore.warehouse_uri, "hive2_compatible": True}
    )
    table = compatible.create_table((*ns, "ok"), schema=schema)
    table.append(rows)
    table.append(rows)
    assert compatible.load_table((*ns, "ok")).scan().to_arrow().num_rows == 2


def test_failover_to_the_next_uri(hive_metastore: HiveMetastore) -> None:
    dead = f"thrift://127.0.0.1:{free_port()}"
    catalog = hive_catalog({"uri": f"{dead},{hive_metastore.uri}"})
    assert ("default",) in catalog.list_namespaces()
    assert catalog.health_check(timeout=5).healthy


def test_unreachable_metastore_is_unavailable_and_unhealthy() -> None:
    catalog = hive_catalog({"uri": f"thrift://127.0.0.1:{free_port()}", "timeout_s": 2})
    started = time.perf_counter()
    health = catalog.health_check(timeout=3)
    assert health.status == "unhealthy"
    assert time.perf_counter() - started < 3.5
    assert health.response_ms < 3500

    with pytest.raises(UnavailableError) as info:
        catalog.list_namespaces()
    assert info.value.retryable is True
    assert info.value.provider == "hive"
    assert info.value.operation == "list_namespaces"


def test_a_silent_metastore_times_out_as_unavailable() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        catalog = hive_catalog({"uri": f"thrift://127.0.0.1:{silent.getsockname()[1]}", "timeout_s": 1})
        started = time.perf_counter()
        with pytest.raises(UnavailableError) as info:
            catalog.list_namespaces()
        assert time.perf_counter() - started < 5
        assert "timeout" in str(info.value)


def test_unsupported_operations_are_tagged(hive_metastore: HiveMetastore) -> None:
    catalog = hive_catalog({"uri": hive_metastore.uri, "warehouse": hive_metastore.warehouse_uri})
    with pytest.raises(NotSupportedError) as info:
        catalog.create_namespace(("a", "b"))
    assert info.value.operation == "create_namespace"
    ns = (unique("ns"),)
    catalog.create_namespace(ns)
    catalog.create_table((*ns, "t"), schema=SMALL)
    with pytest.raises(NotSupportedError):
        catalog.drop_table((*ns, "t"), purge=True)  # PyIceberg's HiveCatalog cannot purge yet
    with pytest.raises(ConflictError):
        catalog.create_namespace(ns)
    with pytest.raises(NotFoundError):
        catalog.delete_namespace((unique("missing"),))


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("http://127.0.0.1:9083", "thrift://"),
        ("127.0.0.1:9083", "thrift://"),
        ("thrift://:9083", "thrift://host:port"),
        ("thrift://h:9083/db", "thrift://host:port"),
        ("thrift://h:notaport", "invalid port"),
        (" , ", "at least one"),
    ],
)
def test_invalid_uri_names_the_field(uri: str, problem: str) -> None:
    with pytest.raises(ValidationError) as info:
        HiveCatalogConfig.model_validate({"uri": uri})
    errors = info.value.errors()
    assert errors[0]["loc"] == ("uri",)
    assert problem in errors[0]["msg"]


def test_config_normalizes_uris_resolves_warehouse_and_builds_properties(tmp_path: Path) -> None:
    catalog = hive_catalog(
        {
            "uri": "thrift://a:9083, thrift://b",
            "warehouse": "../wh/",
            "properties": {"s3.endpoint": "http://127.0.0.1:9000", "lock-check-retries": "8"},
            "auth": "kerberos",
            "kerberos_service_name": "hms",
        },
        base_dir=tmp_path / "manifests",
    )
    assert catalog.catalog_properties() == {
        "type": "hive",
        "uri": "thrift://a:9083,thrift://b:9083",
        "warehouse": f"file://{tmp_path / 'wh'}",
        "s3.endpoint": "http://127.0.0.1:9000",
        "lock-check-retries": "8",
        "hive.kerberos-authentication": "true",
        "hive.kerberos-service-name": "hms",
    }
    assert catalog.describe()["uri"] == "thrift://a:9083,thrift://b:9083"
    assert (
        hive_catalog({"uri": "thrift://h:1", "warehouse": "s3://bucket/wh"}).config.warehouse
        == "s3://bucket/wh"
    )

    with pytest.raises(ValidationError) as info:
        HiveCatalogConfig.model_validate({"uri": "thrift://h:1", "properties": {"uri": "thrift://x:2"}})
    assert info.value.errors()[0]["loc"] == ("properties",)
    with pytest.raises(ValidationError):
        HiveCatalogConfig.model_validate({"uri": "thrift://h:1", "auth": "ldap"})


def test_kerberos_without_sasl_support_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "puresasl" else real_find_spec(name, *a)
    )
    catalog = hive_catalog({"uri": "thrift://127.0.0.1:1", "auth": "kerberos"})
    with pytest.raises(ConfigurationError) as info:
        catalog.connect()
    assert "hive-kerberos" in str(info.value)


def test_registered_as_the_hive_entry_point() -> None:
    assert get_plugin_class("catalogs", "hive") is HiveCatalogPlugin
    assert HiveCatalogPlugin.config_json_schema()["required"] == ["uri"]
