"""PyIceberg ``SqlCatalog``: SQLite for the embedded default, PostgreSQL in production."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from floe_dagster.catalogs.pyiceberg_base import PyIcebergCatalogPlugin
from floe_dagster.core.paths import resolve_local_path
from floe_dagster.plugins.azure import AzureCredentials, AzureCredentialsConfig, blob_path
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.catalog import Identifier
from floe_dagster.plugins.gcs_warehouse import GcsWarehouseConfig, GcsWarehouseCredentials

__all__ = [
    "SqlCatalogConfig",
    "SqlCatalogPlugin",
]


class SqlCatalogConfig(PluginConfig):
    uri: str = Field(
        "sqlite:///.floe/catalog.db",
        description=(
            "SQLAlchemy URI of the catalog database (a relative sqlite path is relative to the manifest)."
        ),
    )
    warehouse: str = Field(".floe/warehouse", description="Where table data and metadata are written.")
    password: SecretStr | None = Field(None, description="Database password, kept out of the URI.")
    adls: AzureCredentialsConfig | None = Field(
        None,
        description=(
            "A warehouse on Azure Blob / ADLS Gen2 (warehouse: abfss://<container>/<path>): the storage"
            " account and one credential mode, as the azure metastore's (docs/object-stores.md)."
        ),
    )
    gcs: GcsWarehouseConfig | None = Field(
        None,
        description=(
            "A warehouse on Google Cloud Storage (warehouse: gs://<bucket>/<path>): the project, the"
            " endpoint and one credential mode (docs/object-stores.md)."
        ),
    )

    @field_validator("uri")
    @classmethod
    def _resolve_sqlite_path(cls, value: str, info: ValidationInfo) -> str:
        prefix = "sqlite:///"
        if value.startswith(prefix) and value != "sqlite:///:memory:":
            return prefix + resolve_local_path(value[len(prefix) :], info)
        if "://" not in value:
            raise ValueError(
                "must be a SQLAlchemy URI such as sqlite:///path/catalog.db or postgresql+psycopg2://host/db"
            )
        if urlsplit(value).password:
            raise ValueError(
                "put the password in the 'password' field (e.g. ${env:CATALOG_DB_PASSWORD}), not in the URI"
            )
        return value

    @model_validator(mode="after")
    def _password_needs_a_server(self) -> SqlCatalogConfig:
        if self.password is not None and self.uri.startswith("sqlite:"):
            raise ValueError(
                "'password' applies to a database server (e.g. postgresql+psycopg2://), not sqlite"
            )
        return self

    @field_validator("warehouse")
    @classmethod
    def _resolve_warehouse(cls, value: str, info: ValidationInfo) -> str:
        resolved = resolve_local_path(value, info)
        return f"file://{resolved}" if resolved.startswith("/") else resolved


class SqlCatalogPlugin(PyIcebergCatalogPlugin):
    type_name: ClassVar[str] = "sql"
    config_model = SqlCatalogConfig
    config: SqlCatalogConfig

    def catalog_properties(self) -> dict[str, str]:
        uri = self.config.uri
        if self.config.password is not None:
            parts = urlsplit(uri)
            user = parts.username or ""
            netloc = f"{user}:{self.config.password.get_secret_value()}@{parts.hostname}"
            netloc += f":{parts.port}" if parts.port else ""
            uri = urlunsplit(parts._replace(netloc=netloc))
        self._ensure_local_dirs()
        props = {"type": "sql", "uri": uri, "warehouse": self.config.warehouse, "init_catalog_tables": "true"}
        if self.config.adls is not None:  # PyIceberg's FileIO on ADLS (plugins/azure.py unwraps the secret)
            props.update(AzureCredentials(self.config.adls).file_io_properties())
        if self.config.gcs is not None:  # PyIceberg's fsspec FileIO (gcsfs) on GCS (plugins/gcs_warehouse.py)
            props.update(GcsWarehouseCredentials(self.config.gcs).file_io_properties())
        return props

    def duckdb_filesystem(self) -> Any:
        """The fsspec filesystem DuckDB registers to read this warehouse (GCS: gcsfs), or None."""
        return GcsWarehouseCredentials(self.config.gcs).duckdb_filesystem() if self.config.gcs else None

    def duckdb_storage_sql(self) -> list[str]:
        """What DuckDB runs before reading this warehouse: on ADLS, a secret of ``TYPE azure``
        scoped to the warehouse's container (``az://<container>``). It holds the secret: run it,
        never log it."""
        container = blob_path(self.config.warehouse)
        if self.config.adls is None or container is None:
            return []
        container = container.removeprefix("az://").split("/", 1)[0]
        name = "floe_warehouse_" + "".join(c if c.isalnum() else "_" for c in self.name)
        return [AzureCredentials(self.config.adls).duckdb_secret_sql(name, scopes=[f"az://{container}"])]

    def delete_namespace(self, namespace: Identifier) -> None:
        self._run("delete_namespace", ".".join(namespace), lambda: self._drop_childless(namespace))

    def _drop_childless(self, namespace: Identifier) -> None:
        """PyIceberg 0.12's ``SqlCatalog`` drops a namespace that still has child namespaces (which
        keep it listed); refuse that as not empty, like Iceberg's Java JdbcCatalog and the REST spec.
        """
        from pyiceberg.exceptions import NamespaceNotEmptyError

        catalog = self.connect()
        children = catalog.list_namespaces(namespace)  # NoSuchNamespaceError if it does not exist
        if children:
            names = ", ".join(".".join(child) for child in sorted(children))
            raise NamespaceNotEmptyError(f"namespace {'.'.join(namespace)} has child namespaces: {names}")
        catalog.drop_namespace(namespace)

    def _ensure_local_dirs(self) -> None:
        from pathlib import Path

        if self.config.uri.startswith("sqlite:///") and ":memory:" not in self.config.uri:
            Path(self.config.uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        if self.config.warehouse.startswith("file://"):
            Path(self.config.warehouse[len("file://") :]).mkdir(parents=True, exist_ok=True)

    def describe(self) -> dict[str, str]:
        safe_uri = urlunsplit(
            urlsplit(self.config.uri)._replace(netloc=urlsplit(self.config.uri).hostname or "")
        )
        return {**super().describe(), "uri": safe_uri, "warehouse": self.config.warehouse}
