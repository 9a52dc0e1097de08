"""PyIceberg ``HiveCatalog``: Iceberg tables registered in a Hive Metastore over Thrift.

Two gaps of PyIceberg 0.12's Hive client are closed here, in a small ``HiveCatalog`` subclass:

* Thrift sockets get a timeout (PyIceberg sets none, so a hung metastore blocks forever);
* several comma-separated URIs fail over on every connection (PyIceberg builds its transport for
  the first URI without connecting, so its own fallback never triggers).

Namespaces created through the plugin get ``<warehouse>/<name>.db`` as location when a warehouse
is configured, like Iceberg's Java ``HiveCatalog``; without one the metastore picks it.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator
from pyiceberg import exceptions as ice

from floe_dagster.catalogs.pyiceberg_base import PyIcebergCatalogPlugin
from floe_dagster.core.compat import hive_catalog_with_failover
from floe_dagster.core.errors import (
    CatalogConflictError,
    CatalogNotFoundError,
    CatalogNotSupportedError,
    CatalogUnavailableError,
    ConfigurationError,
    FloeError,
)
from floe_dagster.core.paths import resolve_local_path
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.catalog import Identifier
from floe_dagster.plugins.redaction import SecretProperties, revealed
from floe_dagster.plugins.thrift import normalize_thrift_uris

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

__all__ = [
    "HiveCatalogConfig",
    "HiveCatalogPlugin",
]


# PyIceberg properties that have a field of their own in the config.
_RESERVED = {
    "type": "type",
    "uri": "uri",
    "warehouse": "warehouse",
    "hive.hive2-compatible": "hive2_compatible",
    "hive.kerberos-authentication": "auth",
    "hive.kerberos-service-name": "kerberos_service_name",
}


class HiveCatalogConfig(PluginConfig):
    uri: str = Field(
        ...,
        description=(
            "Thrift URI of the Hive Metastore, thrift://host:9083 (the port defaults to 9083). Several "
            "comma-separated URIs fail over: each connection tries the last one that answered, then the rest."
        ),
    )
    warehouse: str | None = Field(
        None,
        description=(
            "Root for new namespaces (<warehouse>/<name>.db): a path (relative to the manifest) or a URI "
            "such as s3://bucket/warehouse. Unset: the metastore's own warehouse directory."
        ),
    )
    auth: Literal["none", "kerberos"] = Field(
        "none", description="Thrift authentication: none, or kerberos (SASL/GSSAPI)."
    )
    kerberos_service_name: str = Field("hive", description="Kerberos service name of the metastore.")
    hive2_compatible: bool = Field(
        False,
        description="Hive 2.x metastores: store timestamptz columns as 'timestamp', which Hive 2 accepts.",
    )
    timeout_s: float = Field(
        30.0, gt=0, le=3600, description="Thrift socket timeout, for connecting and for every call."
    )
    properties: SecretProperties = Field(
        default_factory=dict,
        description="Further PyIceberg properties, e.g. s3.endpoint, s3.region, ugi, lock-check-retries.",
    )

    @field_validator("uri")
    @classmethod
    def _check_uris(cls, value: str) -> str:
        return normalize_thrift_uris(value)

    @field_validator("warehouse")
    @classmethod
    def _resolve_warehouse(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        resolved = resolve_local_path(value, info).rstrip("/")
        return f"file://{resolved}" if resolved.startswith("/") else resolved

    @field_validator("properties")
    @classmethod
    def _no_reserved_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key in _RESERVED:
                where = "the plugin type" if key == "type" else f"the '{_RESERVED[key]}' field"
                raise ValueError(f"'{key}' is set by {where}, not in properties")
        return value


def _hive_error_class(exc: Exception) -> type[FloeError] | None:
    """floe's class for Thrift and metastore exceptions that PyIceberg lets through, else None."""
    if isinstance(exc, ImportError):
        return ConfigurationError  # thrift missing: pyiceberg[hive] is not installed
    if isinstance(exc, ice.NoSuchPropertyException):
        return CatalogNotFoundError  # a plain Hive table (no table_type=ICEBERG): no such Iceberg table
    try:
        from hive_metastore import ttypes
        from thrift.Thrift import TApplicationException
        from thrift.transport.TTransport import TTransportException
    except ImportError:
        return None
    if isinstance(exc, TTransportException):
        return CatalogUnavailableError  # refused, reset, timed out, closed by the server
    if isinstance(exc, TApplicationException):
        return CatalogNotSupportedError if exc.type == TApplicationException.UNKNOWN_METHOD else None
    if isinstance(exc, NotImplementedError):
        return CatalogNotSupportedError  # e.g. purge_table, views
    if isinstance(exc, ttypes.NoSuchObjectException):
        return CatalogNotFoundError
    if isinstance(exc, ttypes.AlreadyExistsException):
        return CatalogConflictError
    return None


def _floe_hive_catalog(name: str, timeout_s: float, properties: dict[str, str]) -> Catalog:
    """A PyIceberg ``HiveCatalog`` whose Thrift client times out and fails over between URIs (it
    subclasses PyIceberg's private ``_HiveClient``: ``core/compat.py``)."""
    return hive_catalog_with_failover(name, timeout_s, properties)


class HiveCatalogPlugin(PyIcebergCatalogPlugin):
    type_name: ClassVar[str] = "hive"
    config_model = HiveCatalogConfig
    config: HiveCatalogConfig
    nested_namespaces: ClassVar[bool] = False
    namespace_kind: ClassVar[str] = "Hive Metastore namespaces (databases)"

    def catalog_properties(self) -> dict[str, str]:
        props = {**revealed(self.config.properties), "type": "hive", "uri": self.config.uri}
        if self.config.warehouse:
            props["warehouse"] = self.config.warehouse
        if self.config.hive2_compatible:
            props["hive.hive2-compatible"] = "true"
        if self.config.auth == "kerberos":
            props["hive.kerberos-authentication"] = "true"
            props["hive.kerberos-service-name"] = self.config.kerberos_service_name
        return props

    def open_catalog(self) -> Catalog:
        if self.config.auth == "kerberos" and importlib.util.find_spec("puresasl") is None:
            raise ConfigurationError(
                f"catalog '{self.name}': kerberos needs SASL support; install pyiceberg[hive-kerberos]",
                provider=self.type_name,
                operation="connect",
            )
        return _floe_hive_catalog(self.name, self.config.timeout_s, self.catalog_properties())

    def create_namespace(self, namespace: Identifier, properties: dict[str, str] | None = None) -> None:
        props = dict(properties or {})
        if self.config.warehouse and "location" not in props:
            props["location"] = f"{self.config.warehouse}/{namespace[0]}.db"
        super().create_namespace(namespace, props)

    def list_tables(self, namespace: Identifier) -> list[Identifier]:
        return self._run("list_tables", ".".join(namespace), lambda: self._tables_of_existing(namespace))

    def _tables_of_existing(self, namespace: Identifier) -> list[Identifier]:
        """The metastore lists no tables for a missing database: tell it apart from an empty one."""
        catalog = self.connect()
        tables = [tuple(t) for t in catalog.list_tables(namespace)]
        if not tables:
            catalog.load_namespace_properties(namespace)  # NoSuchNamespaceError if it is missing
        return tables

    def map_error(self, exc: Exception, operation: str, subject: str = "") -> FloeError:
        mapped = super().map_error(exc, operation, subject)
        target = _hive_error_class(exc)
        if target is None or isinstance(mapped, target):
            return mapped
        return target(mapped.message, provider=mapped.provider, operation=mapped.operation)

    def describe(self) -> dict[str, str]:
        facts = {**super().describe(), "uri": self.config.uri}
        if self.config.warehouse:
            facts["warehouse"] = self.config.warehouse
        return facts
