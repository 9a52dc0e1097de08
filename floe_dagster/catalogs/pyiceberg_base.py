"""Shared implementation of the catalog contract on top of any PyIceberg ``Catalog``.

Each catalog plugin only says how to build its PyIceberg properties; namespaces, tables,
health checks and the mapping of PyIceberg exceptions to floe's taxonomy live here once.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from pyiceberg import exceptions as ice

from floe_dagster.plugins.catalog import (
    MAX_HEALTH_TIMEOUT_S,
    CatalogPlugin,
    HealthStatus,
    Identifier,
    VendedCredentials,
)
from floe_dagster.plugins.errors import (
    AuthenticationError,
    CatalogError,
    CatalogUnavailableError,
    ConflictError,
    FloeError,
    NotFoundError,
    NotSupportedError,
)

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.table import Table

T = TypeVar("T")

# Connection lifecycle lines (connecting / connected / failed) with their fields in ``extra``, for
# log pipelines that index them; the message repeats them as key=value for people reading logs.
lifecycle_logger = logging.getLogger("floe_dagster.catalogs.lifecycle")

_EXCEPTION_MAP: list[tuple[type[Exception], type[FloeError]]] = [
    (ice.NamespaceAlreadyExistsError, ConflictError),
    (ice.TableAlreadyExistsError, ConflictError),
    (ice.NamespaceNotEmptyError, ConflictError),
    (ice.CommitFailedException, ConflictError),
    (ice.NoSuchNamespaceError, NotFoundError),
    (ice.NoSuchTableError, NotFoundError),
    (ice.NoSuchIdentifierError, NotFoundError),
    (ice.UnauthorizedError, AuthenticationError),
    (ice.ForbiddenError, AuthenticationError),
    (ice.OAuthError, AuthenticationError),
    (ice.ServiceUnavailableError, CatalogUnavailableError),
    (ice.ServerError, CatalogUnavailableError),
    (ConnectionError, CatalogUnavailableError),
    (TimeoutError, CatalogUnavailableError),
]


class PyIcebergCatalogPlugin(CatalogPlugin):
    """A catalog plugin whose subclasses only provide ``catalog_properties()``."""

    _catalog: Catalog | None = None

    def catalog_properties(self) -> dict[str, str]:
        raise NotImplementedError

    def connect(self) -> Catalog:
        if self._catalog is None:
            from pyiceberg.catalog import load_catalog

            with self.connection_lifecycle(), self._mapped_errors("connect"):
                self._catalog = load_catalog(self.name, **self.catalog_properties())
        return self._catalog

    @contextmanager
    def connection_lifecycle(self) -> Iterator[None]:
        """Log the start, the outcome and the duration of opening this catalog (never a secret)."""
        facts = self.describe()
        fields = " ".join(f"{key}={value}" for key, value in sorted(facts.items()))
        lifecycle_logger.info("catalog.connect.start %s", fields, extra={"floe": {**facts, "event": "start"}})
        started = time.perf_counter()
        try:
            yield
        except FloeError as exc:
            elapsed = round((time.perf_counter() - started) * 1000, 1)
            lifecycle_logger.warning(
                "catalog.connect.failed %s ms=%s retryable=%s error=%s",
                fields,
                elapsed,
                str(exc.retryable).lower(),
                exc.message,
                extra={"floe": {**facts, "event": "failed", "ms": elapsed, "retryable": exc.retryable}},
            )
            raise
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        lifecycle_logger.info(
            "catalog.connect.ok %s ms=%s",
            fields,
            elapsed,
            extra={"floe": {**facts, "event": "ok", "ms": elapsed}},
        )

    @contextmanager
    def _mapped_errors(self, operation: str, subject: str = "") -> Iterator[None]:
        try:
            yield
        except FloeError:
            raise
        except Exception as exc:
            raise self.map_error(exc, operation, subject) from exc

    def map_error(self, exc: Exception, operation: str, subject: str = "") -> FloeError:
        target: type[FloeError] = CatalogError
        for source, mapped in _EXCEPTION_MAP:
            if isinstance(exc, source):
                target = mapped
                break
        if target is CatalogError and type(exc).__module__.startswith("sqlalchemy"):
            target = CatalogUnavailableError
        about = f" {subject}" if subject else ""
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return target(
            f"catalog '{self.name}': {operation}{about} failed: {detail}",
            provider=self.type_name,
            operation=operation,
        )

    def _run(self, operation: str, subject: str, call: Callable[[], T]) -> T:
        """Every catalog operation: one OpenTelemetry span around the (possibly retried) call."""
        from floe_dagster.telemetry import operation_span

        with operation_span("catalog", self.name, self.type_name, operation, subject):
            return self._attempt(operation, subject, call)

    def _attempt(self, operation: str, subject: str, call: Callable[[], T]) -> T:
        """One call with provider errors mapped; plugins that retry override this."""
        with self._mapped_errors(operation, subject):
            return call()

    def create_namespace(self, namespace: Identifier, properties: dict[str, str] | None = None) -> None:
        self._run(
            "create_namespace",
            ".".join(namespace),
            lambda: self.connect().create_namespace(namespace, properties or {}),
        )

    def list_namespaces(self, parent: Identifier | None = None) -> list[Identifier]:
        return self._run(
            "list_namespaces",
            ".".join(parent or ()),
            lambda: [tuple(n) for n in self.connect().list_namespaces(parent or ())],
        )

    def delete_namespace(self, namespace: Identifier) -> None:
        self._run("delete_namespace", ".".join(namespace), lambda: self.connect().drop_namespace(namespace))

    def create_table(
        self,
        identifier: Identifier,
        schema: Any,
        partition_spec: PartitionSpec | None = None,
        location: str | None = None,
        properties: dict[str, str] | None = None,
    ) -> Table:
        from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC

        return self._run(
            "create_table",
            ".".join(identifier),
            lambda: self.connect().create_table(
                identifier,
                schema=schema,
                partition_spec=partition_spec or UNPARTITIONED_PARTITION_SPEC,
                location=location,
                properties=properties or {},
            ),
        )

    def load_table(self, identifier: Identifier) -> Table:
        return self._run("load_table", ".".join(identifier), lambda: self.connect().load_table(identifier))

    def list_tables(self, namespace: Identifier) -> list[Identifier]:
        return self._run(
            "list_tables",
            ".".join(namespace),
            lambda: [tuple(t) for t in self.connect().list_tables(namespace)],
        )

    def drop_table(self, identifier: Identifier, purge: bool = False) -> None:
        catalog = self.connect()
        call = catalog.purge_table if purge else catalog.drop_table
        self._run("drop_table", ".".join(identifier), lambda: call(identifier))

    def vend_credentials(self, identifier: Identifier, operations: list[str]) -> VendedCredentials:
        raise NotSupportedError(
            f"catalog '{self.name}' ({self.type_name}) does not vend credentials; readers use their own",
            provider=self.type_name,
            operation="vend_credentials",
        )

    def health_check(self, timeout: float = MAX_HEALTH_TIMEOUT_S) -> HealthStatus:
        """Probe with a namespace listing, never waiting longer than ``timeout`` (at most 10 s)."""
        timeout = min(max(timeout, 0.001), MAX_HEALTH_TIMEOUT_S)
        started = time.perf_counter()
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        future = pool.submit(self.list_namespaces)
        try:
            future.result(timeout=timeout)
            status, message = "healthy", "namespace listing answered"
        except concurrent.futures.TimeoutError:
            status, message = "unhealthy", f"no answer within {timeout:g}s"
        except FloeError as exc:
            status, message = "unhealthy", exc.message
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        elapsed = (time.perf_counter() - started) * 1000
        return HealthStatus(status=status, response_ms=round(elapsed, 1), message=message)  # type: ignore[arg-type]
