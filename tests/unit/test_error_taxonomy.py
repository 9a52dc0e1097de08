"""One error root (issue 17, item 14): what a catalog raises is a CatalogError of the right
kind, the manifest's errors are FloeErrors, malformed partition metadata is a floe error."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import floe_dagster
from floe_dagster.catalogs.sql import SqlCatalogConfig, SqlCatalogPlugin
from floe_dagster.core.errors import (
    AuthenticationError,
    CatalogAuthenticationError,
    CatalogConflictError,
    CatalogError,
    CatalogNotFoundError,
    CatalogNotSupportedError,
    ConflictError,
    FloeError,
    MetastoreError,
    NotFoundError,
    NotSupportedError,
    PartitionMetadataError,
)
from floe_dagster.manifest.errors import ManifestError
from floe_dagster.plugins.table_model import Column, Partition, ScanDescription
from floe_dagster.readers.duckdb_scan import relation_sql

# exceptions that never leave the function that raises them (control flow, a test harness)
INTERNAL = {"CheckFailed", "DriverMissingError", "ConformanceMismatch", "FeedUnavailable"}


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalogPlugin:
    config = SqlCatalogConfig.model_validate(
        {"uri": "sqlite:///c.db", "warehouse": "w"}, context={"base_dir": tmp_path}
    )
    plugin = SqlCatalogPlugin("lake", config)
    plugin.create_namespace(("raw",))
    return plugin


def test_a_catalogs_not_found_conflict_and_not_supported_are_catalog_errors(
    catalog: SqlCatalogPlugin,
) -> None:
    with pytest.raises(CatalogError) as missing:
        catalog.drop_table(("raw", "missing"))
    assert isinstance(missing.value, NotFoundError)
    with pytest.raises(CatalogError) as exists:
        catalog.create_namespace(("raw",))
    assert isinstance(exists.value, ConflictError)
    with pytest.raises(CatalogError) as unsupported:
        catalog.vend_credentials(("raw", "t"), ["read"])
    assert isinstance(unsupported.value, NotSupportedError)


@pytest.mark.parametrize(
    ("catalog_class", "kind"),
    [
        (CatalogNotFoundError, NotFoundError),
        (CatalogConflictError, ConflictError),
        (CatalogAuthenticationError, AuthenticationError),
        (CatalogNotSupportedError, NotSupportedError),
    ],
)
def test_each_catalog_error_is_both_a_catalog_error_and_its_kind(
    catalog_class: type[FloeError], kind: type[FloeError]
) -> None:
    error = catalog_class("x", provider="rest", operation="load_table")
    assert isinstance(error, CatalogError) and isinstance(error, kind) and isinstance(error, FloeError)
    assert not error.retryable


def test_every_error_class_of_floe_dagster_has_one_root() -> None:
    outside = []
    for info in pkgutil.walk_packages(floe_dagster.__path__, "floe_dagster."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional engine driver
            continue
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and not issubclass(value, Warning)  # a warning is no error (CompatibilityWarning)
                and value.__module__ == module.__name__
                and not issubclass(value, FloeError)
                and name not in INTERNAL
            ):
                outside.append(f"{module.__name__}.{name}")
    assert outside == []
    assert issubclass(ManifestError, FloeError)


def test_a_partition_with_more_values_than_keys_is_a_floe_error() -> None:
    partition = Partition(("2024-01-01", "extra"), "s3://b/t/ds=2024-01-01")
    with pytest.raises(
        PartitionMetadataError, match=r"2 value\(s\).*1 partition key\(s\).*s3://b/t/ds=2024-01-01"
    ):
        partition.name(["ds"])
    assert issubclass(PartitionMetadataError, MetastoreError)
    scan = ScanDescription(
        table="db.t",
        format="parquet",
        location="s3://b/t",
        partition_columns=(Column("ds", "string"),),
        partitions=(Partition(("a", "b"), "s3://b/t/x"),),
    )
    with pytest.raises(FloeError, match="malformed partition metadata"):
        relation_sql(scan)
