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
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pyiceberg import exceptions as ice

from floe_dagster.core.errors import (
    CatalogAuthenticationError,
    CatalogConflictError,
    CatalogError,
    CatalogNotFoundError,
    CatalogNotSupportedError,
    CatalogUnavailableError,
    FloeError,
)
from floe_dagster.plugins.catalog import (
    MAX_HEALTH_TIMEOUT_S,
    CatalogPlugin,
    HealthStatus,
    Identifier,
    VendedCredentials,
)
from floe_dagster.plugins.telemetry import operation_span

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.table import Table

__all__ = [
    "PyIcebergCatalogPlugin",
]

T = TypeVar("T")

# Connection lifecycle lines (connecting / connected / failed) with their fields in ``extra``, for
# log pipelines that index them; the message repeats them as key=value for people reading logs.
lifecycle_logger = logging.getLogger("floe_dagster.catalogs.lifecycle")

_EXCEPTION_MAP: list[tuple[type[Exception], type[FloeError]]] = [
    (ice.NamespaceAlreadyExistsError, CatalogConflictError),
    (ice.TableAlreadyExistsError, CatalogConflictError),
    (ice.NamespaceNotEmptyError, CatalogConflictError),
    (ice.CommitFailedException, CatalogConflictError),
    (ice.NoSuchNamespaceError, CatalogNotFoundError),
    (ice.NoSuchTableError, CatalogNotFoundError),
    (ice.NoSuchIdentifierError, CatalogNotFoundError),
    (ice.UnauthorizedError, CatalogAuthenticationError),
    (ice.ForbiddenError, CatalogAuthenticationError),
    (ice.OAuthError, CatalogAuthenticationError),
    (ice.ServiceUnavailableError, CatalogUnavailableError),
    (ice.ServerError, CatalogUnavailableError),
    (ConnectionError, CatalogUnavailableError),
    (TimeoutError, CatalogUnavailableError),
]


def bounded_health_timeout(timeout: float) -> float:
    """The health check's effective timeout: at least 1 ms, at most 10 s (the contract's bound)."""
    return min(max(timeout, 0.001), MAX_HEALTH_TIMEOUT_S)


class PyIcebergCatalogPlugin(CatalogPlugin):
    """A catalog plugin whose subclasses only provide ``catalog_properties()`` (or ``open_catalog``).

    Only the caller's thread publishes the connected catalog (``_publish``): a health probe that
    was abandoned at its timeout may still finish opening a catalog in its worker thread, and
    that catalog is dropped.
    """

    _catalog: Catalog | None = None
    # Catalogs whose namespaces are one level (databases) say so here, with what they call them;
    # nested namespaces are then refused with a CatalogNotSupportedError instead of PyIceberg's silent [].
    nested_namespaces: ClassVar[bool] = True
    namespace_kind: ClassVar[str] = "namespaces"

    def catalog_properties(self) -> dict[str, str]:
        raise NotImplementedError

    def open_catalog(self) -> Catalog:
        """A new PyIceberg catalog for this config: no caching, span or error mapping (see connect)."""
        from pyiceberg.catalog import load_catalog

        return load_catalog(self.name, **self.catalog_properties())

    def connect(self) -> Catalog:
        catalog = self._connected()
        if catalog is None:
            opened_at = time.monotonic()
            with self.connection_lifecycle():
                catalog = self._run("connect", self._connect_subject(), self.open_catalog)
            self._publish(catalog, opened_at)
        return catalog

    def _connected(self) -> Catalog | None:
        """The catalog opened earlier, if it can still be used."""
        return self._catalog

    def _publish(self, catalog: Catalog, opened_at: float) -> None:
        """Keep ``catalog`` (opened at ``time.monotonic()`` ``opened_at``) for the next calls."""
        self._catalog = catalog

    def _connect_subject(self) -> str:
        """Where ``connect`` goes, for spans and errors: the catalog's URI when it has one."""
        return self.describe().get("uri", "")

    @contextmanager
    def connection_lifecycle(self, by: str = "connect") -> Iterator[None]:
        """Log the start, the outcome and the duration of opening this catalog (never a secret).

        ``by`` names the operation that opens it: ``connect``, or ``health_check`` for a probe.
        """
        facts = {**self.describe(), "by": by}
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

        with operation_span("catalog", self.name, self.type_name, operation, subject):
            return self._attempt(operation, subject, call)

    def _attempt(self, operation: str, subject: str, call: Callable[[], T]) -> T:
        """One call with provider errors mapped; plugins that retry override this."""
        with self._mapped_errors(operation, subject):
            return call()

    def create_namespace(self, namespace: Identifier, properties: dict[str, str] | None = None) -> None:
        if len(namespace) > 1 and not self.nested_namespaces:
            raise CatalogNotSupportedError(
                f"catalog '{self.name}': {self.namespace_kind} are one level, so the nested namespace "
                f"{'.'.join(namespace)} cannot be created; use a one-part name",
                provider=self.type_name,
                operation="create_namespace",
            )
        self._run(
            "create_namespace",
            ".".join(namespace),
            lambda: self.connect().create_namespace(namespace, properties or {}),
        )

    def list_namespaces(self, parent: Identifier | None = None) -> list[Identifier]:
        if parent and not self.nested_namespaces:
            raise CatalogNotSupportedError(
                f"catalog '{self.name}': {self.namespace_kind} are one level, so {'.'.join(parent)} has "
                "no child namespaces to list; call list_namespaces() without a parent",
                provider=self.type_name,
                operation="list_namespaces",
            )
        return self._run(
            "list_namespaces",
            ".".join(parent or ()),
            lambda: [tuple(n) for n in self.connect().list_namespaces(parent or ())],
        )

    def delete_namespace(self, namespace: Identifier) -> None:
        self._run("delete_namespace", ".".join(namespace), lambda: self.connect().drop_namespace(namespace))

    def load_namespace_properties(self, namespace: Identifier) -> dict[str, str]:
        return self._run(
            "load_namespace_properties",
            ".".join(namespace),
            lambda: dict(self.connect().load_namespace_properties(namespace)),
        )

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
        raise CatalogNotSupportedError(
            f"catalog '{self.name}' ({self.type_name}) does not vend credentials; readers use their own",
            provider=self.type_name,
            operation="vend_credentials",
        )

    def health_check(self, timeout: float = MAX_HEALTH_TIMEOUT_S) -> HealthStatus:
        """One namespace listing, no retries, answered within ``timeout`` (at most 10 s) or unhealthy.

        One span ``floe.catalog.health_check`` (outcome ``error`` when unhealthy). The probe runs
        in a worker thread so that a hung catalog cannot hold the caller past the timeout; when it
        has to open the catalog, the connection lifecycle is logged as by ``connect``, and the
        catalog is kept only if the probe answered in time.
        """

        timeout = bounded_health_timeout(timeout)
        subject = self._connect_subject()
        started = time.perf_counter()
        try:
            with operation_span("catalog", self.name, self.type_name, "health_check", subject):
                self._probe(timeout)
            status, message = "healthy", f"namespace listing answered (timeout {timeout:g}s)"
        except FloeError as exc:
            status, message = "unhealthy", exc.message
        elapsed = (time.perf_counter() - started) * 1000
        return HealthStatus(
            status=status,  # type: ignore[arg-type]
            response_ms=round(elapsed, 1),
            message=message,
            details={**self.describe(), "timeout_s": timeout},
        )

    def _probe(self, timeout: float) -> None:
        connected = self._connected()
        if connected is not None:
            self._within(timeout, connected.list_namespaces)
            return
        opened_at = time.monotonic()
        with self.connection_lifecycle(by="health_check"):
            catalog = self._within(timeout, self._open_and_list)
        self._publish(catalog, opened_at)  # here, in the caller's thread, and only in time

    def _open_and_list(self) -> Catalog:
        catalog = self.open_catalog()
        catalog.list_namespaces()
        return catalog

    def _within(self, timeout: float, call: Callable[[], T]) -> T:
        """``call()`` in a worker thread, given up after ``timeout`` s; a late result is dropped."""
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="floe-health")
        future = pool.submit(self._probe_call, timeout, call)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise CatalogUnavailableError(
                f"catalog '{self.name}': no answer within {timeout:g}s",
                provider=self.type_name,
                operation="health_check",
            ) from None
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _probe_call(self, timeout: float, call: Callable[[], T]) -> T:
        with self._probe_scope(timeout), self._mapped_errors("health_check", self._connect_subject()):
            return call()

    @contextmanager
    def _probe_scope(self, timeout: float) -> Iterator[None]:
        """Around the probe, in its worker thread: plugins that can bound each request do so here."""
        yield
