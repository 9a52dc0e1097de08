"""The stores' fsspec filesystems registered on a DuckDB connection for dbt source views
(``readers/metastore_views.py`` ``register_filesystems``): one per scheme, as DuckDB allows."""

from __future__ import annotations

import logging

import duckdb
import pytest

from floe_dagster.readers.metastore_views import register_filesystems
from floe_dagster.readers.stores.gcs import gcsfs_filesystem


def gcs(endpoint: str) -> object:
    return gcsfs_filesystem(
        {"gcs.floe.anonymous": "true", "gcs.service.host": endpoint, "gcs.project-id": "p"}
    )


def test_metastores_with_the_same_credentials_share_one_filesystem_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    con = duckdb.connect()
    caplog.set_level(logging.WARNING, logger="floe_dagster")
    first, second = gcs("http://127.0.0.1:9101"), gcs("http://127.0.0.1:9101")
    assert first is second  # fsspec's one instance for the same arguments
    register_filesystems(con, [("a", first), ("b", second)])
    assert con.filesystem_is_registered("gs") and not caplog.records


def test_a_second_metastore_with_other_credentials_is_named_in_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    con = duckdb.connect()
    caplog.set_level(logging.WARNING, logger="floe_dagster")
    register_filesystems(con, [("a", gcs("http://127.0.0.1:9102")), ("b", gcs("http://127.0.0.1:9103"))])
    (record,) = caplog.records
    message = record.getMessage()
    assert "metastore 'b' reads gs:// through metastore 'a'" in message and "HMAC" in message
    assert [name for name in con.list_filesystems() if name == "gs"] == ["gs"]


def test_a_filesystem_already_on_the_connection_is_kept() -> None:
    con = duckdb.connect()
    warehouse = gcs("http://127.0.0.1:9104")
    con.register_filesystem(warehouse)  # a catalog's warehouse on GCS, registered first
    register_filesystems(con, [("a", gcs("http://127.0.0.1:9105"))])  # no "already registered"
    assert con.filesystem_is_registered("gs")
