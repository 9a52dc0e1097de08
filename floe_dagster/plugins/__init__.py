"""The three plugin contracts (catalog, compute, metastore), their registry and error taxonomy."""

from floe_dagster.plugins.catalog import CatalogPlugin, HealthStatus, VendedCredentials
from floe_dagster.plugins.compute import ComputePlugin, ConnectionResult, DbtProfileContext, ResourceSpec
from floe_dagster.plugins.errors import (
    AuthenticationError,
    CatalogError,
    ComputeError,
    ConfigurationError,
    ConflictError,
    FloeError,
    MetastoreError,
    NotFoundError,
    NotSupportedError,
    PluginNotFoundError,
    UnavailableError,
)
from floe_dagster.plugins.metastore import (
    Capability,
    Column,
    MetastoreConnector,
    Partition,
    StorageDescriptor,
    Table,
    TableFilter,
    TableStats,
)
from floe_dagster.plugins.registry import available_types, get_plugin_class

__all__ = [
    "AuthenticationError",
    "Capability",
    "CatalogError",
    "CatalogPlugin",
    "Column",
    "ComputeError",
    "ComputePlugin",
    "ConfigurationError",
    "ConflictError",
    "ConnectionResult",
    "DbtProfileContext",
    "FloeError",
    "HealthStatus",
    "MetastoreConnector",
    "MetastoreError",
    "NotFoundError",
    "NotSupportedError",
    "Partition",
    "PluginNotFoundError",
    "ResourceSpec",
    "StorageDescriptor",
    "Table",
    "TableFilter",
    "TableStats",
    "UnavailableError",
    "VendedCredentials",
    "available_types",
    "get_plugin_class",
]
