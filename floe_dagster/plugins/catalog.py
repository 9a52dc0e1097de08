"""The catalog contract: an Iceberg catalog that floe-dagster can connect to and manage."""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr

from floe_dagster.core.errors import ConflictError
from floe_dagster.plugins.base import Plugin, PluginConfig

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table

__all__ = [
    "MAX_HEALTH_TIMEOUT_S",
    "MAX_VENDED_TTL_HOURS",
    "CatalogPlugin",
    "HealthStatus",
    "Identifier",
    "VendedCredentials",
]

Identifier = tuple[str, ...]

MAX_VENDED_TTL_HOURS = 24
MAX_HEALTH_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class VendedCredentials:
    access_key_id: str
    secret_access_key: SecretStr
    session_token: SecretStr | None
    expiration: datetime | None


@dataclass(frozen=True)
class HealthStatus:
    status: Literal["healthy", "unhealthy"]
    response_ms: float
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.status == "healthy"


class CatalogPlugin(Plugin, abc.ABC):
    """An Iceberg catalog. ``connect()`` returns a PyIceberg ``Catalog``; the rest is built on it."""

    def __init__(self, name: str, config: PluginConfig) -> None:
        self.name = name
        self.config = config

    @abc.abstractmethod
    def connect(self) -> Catalog: ...

    @abc.abstractmethod
    def create_namespace(self, namespace: Identifier, properties: dict[str, str] | None = None) -> None: ...

    @abc.abstractmethod
    def list_namespaces(self, parent: Identifier | None = None) -> list[Identifier]:
        """Top-level namespaces, or the direct children of ``parent``.

        A catalog whose namespaces are one level (Glue, Hive) raises ``NotSupportedError`` for a
        ``parent`` instead of answering an empty list.
        """

    @abc.abstractmethod
    def delete_namespace(self, namespace: Identifier) -> None: ...

    def load_namespace_properties(self, namespace: Identifier) -> dict[str, str]:
        """The namespace's properties (those it was created with, plus any the catalog adds)."""
        return dict(self.connect().load_namespace_properties(namespace))

    @abc.abstractmethod
    def create_table(
        self,
        identifier: Identifier,
        schema: Schema | Any,
        partition_spec: PartitionSpec | None = None,
        location: str | None = None,
        properties: dict[str, str] | None = None,
    ) -> Table: ...

    @abc.abstractmethod
    def load_table(self, identifier: Identifier) -> Table: ...

    @abc.abstractmethod
    def list_tables(self, namespace: Identifier) -> list[Identifier]: ...

    @abc.abstractmethod
    def drop_table(self, identifier: Identifier, purge: bool = False) -> None: ...

    @abc.abstractmethod
    def vend_credentials(self, identifier: Identifier, operations: list[str]) -> VendedCredentials: ...

    @abc.abstractmethod
    def health_check(self, timeout: float = MAX_HEALTH_TIMEOUT_S) -> HealthStatus: ...

    def ensure_namespace(self, namespace: Identifier) -> None:
        """Create ``namespace`` unless it exists."""

        with contextlib.suppress(ConflictError):
            self.create_namespace(namespace)

    def describe(self) -> dict[str, str]:
        """Non-secret facts for logs, metadata and the UI."""
        return {"catalog": self.name, "type": self.type_name}
