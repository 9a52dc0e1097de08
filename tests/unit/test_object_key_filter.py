"""The one key filter of the object-store sources' listings (``S3MetastoreConnector._listed``),
the same on every store: S3, Azure Blob and GCS (pure: no client is made, no network)."""

from __future__ import annotations

from typing import Any

import pytest

from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.factory import connect_metastore

STORES: dict[str, dict[str, Any]] = {
    "s3": {"bucket": "lake", "region": "us-east-1", "access_key_id": "a", "secret_access_key": "b"},
    "azure": {"container": "lake", "account_name": "acct", "account_key": "a2V5"},
    "gcs": {"bucket": "lake", "anonymous": True},
}

KEYS = [
    "orders.parquet",
    "sales/eu/part-0.PARQUET",
    "sales/eu/",  # a folder marker
    "notes.txt",
    "sales/eu/_delta_log/00000000000000000000.json",
    "sales/eu/_delta_log/00000000000000000001.checkpoint.parquet",
    "_delta_log/00000000000000000000.json",  # a table at the root
    "sales/eu/_delta_log/",  # the log folder's marker
    "sales/eu/part-00000-1.snappy.parquet",  # a Delta data file: the format's business
    "trips/.hoodie/20240101000000000.commit",
    "trips/.hoodie/hoodie.properties",
    "trips/2024/abc_1-0-1_20240101000000000.parquet",
]


def kept(store: str, file_type: str) -> list[str]:
    conn = connect_metastore("lake", store, {**STORES[store], "file_type": file_type}, environ={})
    assert isinstance(conn, S3MetastoreConnector)
    return [key for key in KEYS if conn._listed(key)]


@pytest.mark.parametrize("store", sorted(STORES))
def test_every_store_keeps_the_same_keys_for_each_file_type(store: str) -> None:
    assert kept(store, "parquet") == [
        "orders.parquet",
        "sales/eu/part-0.PARQUET",
        "sales/eu/_delta_log/00000000000000000001.checkpoint.parquet",
        "sales/eu/part-00000-1.snappy.parquet",
        "trips/2024/abc_1-0-1_20240101000000000.parquet",
    ]
    assert kept(store, "delta") == [
        "sales/eu/_delta_log/00000000000000000000.json",
        "sales/eu/_delta_log/00000000000000000001.checkpoint.parquet",
        "_delta_log/00000000000000000000.json",
    ]
    assert kept(store, "hudi") == [
        "trips/.hoodie/20240101000000000.commit",
        "trips/.hoodie/hoodie.properties",
    ]
