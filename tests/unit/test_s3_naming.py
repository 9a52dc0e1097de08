"""S3 table naming, grouping, data versions and config validation (pure: no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from floe_dagster.core.errors import InvalidFieldError
from floe_dagster.metastores.object_tables import (
    EXTENSIONS,
    S3Object,
    column_differences,
    data_version,
    group_objects,
    table_name_for_key,
    widen_schemas,
    widen_type,
)
from floe_dagster.metastores.s3 import ordered_parallel, rebatch
from floe_dagster.plugins.factory import metastore_config

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("key", "table"),
    [
        # root file -> file name without extension
        ("orders.parquet", "orders"),
        ("Orders.PARQUET", "Orders"),
        ("my.orders-v2.parquet", "my_orders_v2"),
        # nested key -> prefix segments joined by _
        ("sales/file.parquet", "sales"),
        ("sales/eu/file.parquet", "sales_eu"),
        ("sales/eu/2024/part-0001.parquet", "sales_eu_2024"),
        # hyphens and dots -> _
        ("web-logs/v1.2/x.parquet", "web_logs_v1_2"),
        # repeated separators collapse; leading/trailing ones go
        ("a//b/x.parquet", "a_b"),
        ("a--b..c/x.parquet", "a_b_c"),
        ("_a__b_/x.parquet", "a_b"),
        ("-lead/trail-/x.parquet", "lead_trail"),
        # nothing usable left
        ("---.parquet", ""),
        ("", ""),
    ],
)
def test_table_name_for_key(key: str, table: str) -> None:
    assert table_name_for_key(key) == table


def test_extensions_of_the_file_type_are_stripped_from_root_files() -> None:
    assert table_name_for_key("events.ndjson", EXTENSIONS["json"]) == "events"
    assert table_name_for_key("events.json", EXTENSIONS["json"]) == "events"
    assert table_name_for_key("people.csv", EXTENSIONS["csv"]) == "people"


def obj(key: str, size: int = 10, etag: str = "e") -> S3Object:
    return S3Object(key=key, size=size, etag=etag, last_modified=NOW)


def test_several_files_under_one_prefix_are_one_table() -> None:
    grouped = group_objects(
        [
            obj("sales/eu/b.parquet"),
            obj("sales/eu/a.parquet"),
            obj("sales/us/a.parquet"),
            obj("orders.parquet"),
            obj("sales-eu/c.parquet"),  # normalises to the same name: same table
            obj("---.parquet"),  # no name: left out
        ]
    )
    assert list(grouped) == ["orders", "sales_eu", "sales_us"]
    assert [o.key for o in grouped["sales_eu"]] == [
        "sales-eu/c.parquet",
        "sales/eu/a.parquet",
        "sales/eu/b.parquet",
    ]


def test_data_version_changes_exactly_when_an_object_is_added_replaced_or_removed() -> None:
    base = [obj("t/a.parquet"), obj("t/b.parquet")]
    version = data_version(base)
    assert data_version(list(reversed(base))) == version
    assert data_version([*base, obj("t/c.parquet")]) != version
    assert data_version([obj("t/a.parquet"), obj("t/b.parquet", etag="f")]) != version
    assert data_version([obj("t/a.parquet"), obj("t/b.parquet", size=11)]) != version
    assert data_version(base[:1]) != version


def test_column_differences_name_each_column() -> None:
    assert column_differences({"a": "int64"}, {"a": "int64"}) == []
    found = column_differences({"a": "int64", "b": "string"}, {"a": "string", "c": "double"})
    assert "column 'b' only in the first" in found
    assert "column 'c' only in the second" in found
    assert "column 'a' is int64 in the first and string in the second" in found


def test_inferred_types_widen_only_where_every_value_fits() -> None:
    import pyarrow as pa

    assert widen_type(pa.int64(), pa.float64()) == pa.float64()  # 2 and 2.5: double
    assert widen_type(pa.float64(), pa.int64()) == pa.float64()
    assert widen_type(pa.int32(), pa.int64()) == pa.int64()
    assert widen_type(pa.null(), pa.string()) == pa.string()  # an empty column takes the other
    assert widen_type(pa.timestamp("s"), pa.timestamp("ns")) == pa.timestamp("ns")
    assert widen_type(pa.int64(), pa.string()) is None  # no type holds both
    assert widen_type(pa.timestamp("s"), pa.timestamp("s", tz="UTC")) is None
    assert widen_type(pa.bool_(), pa.int64()) is None


def test_widened_schemas_report_only_what_cannot_be_widened() -> None:
    import pyarrow as pa

    first = pa.schema([("id", pa.int64()), ("amount", pa.int64()), ("note", pa.null())])
    second = pa.schema([("id", pa.int64()), ("amount", pa.float64()), ("note", pa.string())])
    widened, differences = widen_schemas(first, second)
    assert differences == []
    assert widened == pa.schema([("id", pa.int64()), ("amount", pa.float64()), ("note", pa.string())])
    _, differences = widen_schemas(first, pa.schema([("id", pa.string()), ("amount", pa.int64())]))
    assert differences == [
        "column 'note' only in the first",
        "column 'id' is int64 in the first and string in the second",
    ]


@pytest.mark.parametrize(
    ("sizes", "rows", "expected"),
    [
        ([250, 250, 250, 250], 300, [300, 300, 300, 100]),  # across input batches
        ([1000], 100, [100] * 10),
        ([1000], 500, [500, 500]),
        ([3, 0, 4], 10, [7]),
        ([], 10, []),
    ],
)
def test_rebatch_cuts_exactly_rows_per_record(sizes: list[int], rows: int, expected: list[int]) -> None:
    import pyarrow as pa

    start, batches = 0, []
    for size in sizes:
        batches.append(pa.record_batch({"id": pa.array(range(start, start + size), pa.int64())}))
        start += size
    out = list(rebatch(batches, rows))
    assert [b.num_rows for b in out] == expected
    assert [v for b in out for v in b.column(0).to_pylist()] == list(range(start))  # nothing lost, in order


def test_ordered_parallel_keeps_order_and_bounds_work_in_flight() -> None:
    import threading
    import time

    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def work(i: int) -> int:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.005)
        with lock:
            state["now"] -= 1
        return i * 2

    assert list(ordered_parallel(list(range(40)), work, 3)) == [i * 2 for i in range(40)]
    assert state["max"] <= 3
    assert list(ordered_parallel(list(range(5)), work, None)) == [0, 2, 4, 6, 8]


def config(**overrides: object) -> dict[str, object]:
    return {"bucket": "my-bucket", "region": "eu-west-1", **overrides}


def test_defaults() -> None:
    _, parsed = metastore_config("lake", "s3", config(), environ={})
    assert parsed.file_type == "parquet"  # type: ignore[attr-defined]
    assert parsed.rows_per_record == 500  # type: ignore[attr-defined]
    assert parsed.concurrency == 50  # type: ignore[attr-defined]
    assert parsed.table_namespace == "my_bucket"  # type: ignore[attr-defined]
    assert parsed.ingest.enabled is False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"bucket": "s3://my-bucket/x"}, "bucket", "bucket name only"),
        ({"bucket": "A"}, "bucket", "3-63 characters"),
        ({"region": "Europe"}, "region", "AWS region"),
        ({"file_type": "xlsx"}, "file_type", "'parquet', 'csv', 'json', 'orc', 'avro', 'delta' or 'hudi'"),
        ({"rows_per_record": 0}, "rows_per_record", "greater than or equal to 1"),
        ({"concurrency": 0}, "concurrency", "-1 for no limit"),
        ({"concurrency": -2}, "concurrency", "-1 for no limit"),
        ({"endpoint": "localhost:9000"}, "endpoint", "http(s) URL"),
        ({"path_prefix": "/raw"}, "path_prefix", "relative to the bucket"),
        ({"access_key_id": "AKIA"}, "secret_access_key", "required when access_key_id"),
        ({"ingest": {"enabled": True, "namespace": "raw.s3"}}, "ingest.namespace", "one identifier"),
        ({"ingest": {"commit_mb": 0}}, "ingest.commit_mb", "greater than 0"),
        ({"nope": 1}, "nope", "Extra inputs"),
    ],
)
def test_invalid_config_names_the_field_before_any_network_call(
    overrides: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        metastore_config("lake", "s3", config(**overrides), environ={})
    assert caught.value.field == field
    assert words in str(caught.value)
    assert "metastore 'lake' (provider s3)" in str(caught.value)


def test_missing_bucket_and_region_are_named() -> None:
    with pytest.raises(InvalidFieldError) as caught:
        metastore_config("lake", "s3", {"region": "eu-west-1"}, environ={})
    assert caught.value.field == "bucket"
    with pytest.raises(InvalidFieldError) as caught:
        metastore_config("lake", "s3", {"bucket": "my-bucket"}, environ={})
    assert caught.value.field == "region" and "AWS_REGION" in str(caught.value)
    _, parsed = metastore_config("lake", "s3", {"bucket": "my-bucket"}, environ={"AWS_REGION": "us-west-2"})
    assert parsed.region == "us-west-2"  # type: ignore[attr-defined]


def test_a_secret_never_appears_in_a_validation_error() -> None:
    canary = "CANARY-s3-secret-8d1f"
    with pytest.raises(InvalidFieldError) as caught:
        metastore_config(
            "lake", "s3", config(secret_access_key=canary, session_token=canary + "tok"), environ={}
        )
    assert canary not in str(caught.value) and canary not in repr(caught.value.__dict__)
