"""What the warehouse computes (Trino, Snowflake, Databricks, BigQuery, ClickHouse) share.

Each of them is a remote engine used as a dbt target:

- the profile is one output in the adapter's own format; every secret field is written as
  ``{{ env_var('FLOE_SECRET_<COMPUTE>_<FIELD>') }}`` and :meth:`WarehouseCompute.dbt_env` returns
  the values for the dbt process of that compute only;
- presets size the pod that runs dbt (a client), not the warehouse;
- ``validate_connection`` goes through the engine's Python driver with a connect timeout and
  reports ``failed`` (never raises) when the driver is missing, the endpoint does not answer or
  the credentials are refused; messages name the compute type and the endpoint, never a secret;
- Iceberg catalogs of the manifest are not attached: the warehouse reads its own catalogs.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any, ClassVar

from pydantic import ConfigDict, SecretStr, ValidationError

from floe_dagster.core.errors import (
    ComputeConfigurationError,
    ComputeConnectionError,
    ComputeError,
    ComputeTimeoutError,
)
from floe_dagster.plugins.base import PluginConfig, located_error
from floe_dagster.plugins.catalog import CatalogPlugin
from floe_dagster.plugins.compute import (
    REMOTE_ENGINE_PRESETS,
    ComputePlugin,
    ConnectionResult,
    ResourceSpec,
    pick_preset,
    redact,
    secret_env_name,
    secret_reference,
)

logger = logging.getLogger("floe_dagster.computes")

WAREHOUSES_EXTRA = "floe-dagster[warehouses]"
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


class WarehouseConfig(PluginConfig):
    """Base of the warehouse config models: inputs are never echoed in validation errors.

    A config-level check (such as "authenticator 'snowflake' needs 'password'") sees the whole
    mapping, secrets included; pydantic would print it with the error unless told not to.
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    def secrets(self) -> dict[str, str]:
        """Every secret field that is set, by field name."""
        values: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                values[name] = value.get_secret_value()
        return values


def missing_credential(model: str, field: str, message: str) -> ValidationError:
    """The error of a config-level credential check, located at the missing field, so the manifest
    line reads ``computes.targets.<name>.config.<field>: ...``."""
    return located_error(model, (field,), message, "missing_credential")


class DriverMissingError(Exception):
    """The engine's Python driver is not installed (raised by ``WarehouseCompute._probe``)."""

    def __init__(self, package: str) -> None:
        super().__init__(package)
        self.package = package


def require(module: str, package: str) -> Any:
    """Import a driver module, or raise :class:`DriverMissingError` naming the package to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DriverMissingError(package) from exc


class WarehouseCompute(ComputePlugin):
    """Shared implementation; a subclass writes the profile and the driver probe."""

    package: ClassVar[str]  # the dbt adapter requirement
    driver_package: ClassVar[str]  # the Python driver validate_connection uses (pip name)
    driver_module: ClassVar[str]  # ... and the module it is imported as

    # --- the contract ---------------------------------------------------------------------------

    def get_required_dbt_packages(self) -> list[str]:
        return [self.package]

    def required_drivers(self, config: PluginConfig | None = None) -> dict[str, str]:
        if isinstance(config, self.config_model):
            module, package = self.driver(config)
            return {module: package}
        return {self.driver_module: self.driver_package}

    def get_resource_requirements(self, workload_size: str) -> ResourceSpec:
        return pick_preset(REMOTE_ENGINE_PRESETS, workload_size, self.type_name)

    def get_catalog_attachment_sql(self, catalog: CatalogPlugin) -> list[str] | None:
        return None  # the warehouse reads its own catalogs; nothing is attached per dbt session

    def dbt_env(self, config: PluginConfig, compute_name: str) -> dict[str, str]:
        """``FLOE_SECRET_<COMPUTE>_<FIELD>`` for every secret set: for this compute's dbt process only."""
        checked = self._checked(config, "dbt_env")
        return {secret_env_name(compute_name, name): value for name, value in checked.secrets().items()}

    def validate_connection(self, config: PluginConfig) -> ConnectionResult:
        checked = self._checked(config, "validate_connection")
        where = f"{self.type_name} {self.endpoint(checked)}"
        secrets = list(checked.secrets().values())
        timeout = self.connect_timeout(checked)
        logger.info("compute %s: validating the connection (timeout %ss)", where, timeout)
        started = time.perf_counter()
        try:
            require(*self.driver(checked))
            self._reach(checked, timeout)
            detail = self._probe(checked)
        except DriverMissingError as exc:
            message = (
                f"{where}: the Python driver '{exc.package}' is not installed;"
                f" install it with `pip install {exc.package}` (or `pip install '{WAREHOUSES_EXTRA}'`)"
            )
            return self._result("failed", started, message)
        except Exception as exc:
            elapsed = time.perf_counter() - started
            error = exc if isinstance(exc, ComputeError) else None
            text = redact(error.message, secrets) if error else describe(exc, secrets)
            if elapsed >= timeout * 0.9 and f"connect_timeout={timeout}s" not in text:
                text += f" (connect_timeout={timeout}s)"
            if error is None:
                error = ComputeConnectionError(text, provider=self.type_name, operation="validate_connection")
            message = f"{where}: {text} (correlation id {error.correlation_id})"
            return self._result("failed", started, message, error.correlation_id)
        return self._result("ok", started, f"{where}: {detail}")

    # --- what a subclass provides -----------------------------------------------------------------

    def endpoint(self, config: Any) -> str:
        """Where validation connects, for messages (no secret)."""
        raise NotImplementedError

    def connect_timeout(self, config: Any) -> int:
        return int(config.connect_timeout)

    def driver(self, config: Any) -> tuple[str, str]:
        """(module, pip package) of the driver validation uses; checked before anything else."""
        return self.driver_module, self.driver_package

    def socket_address(self, config: Any) -> tuple[str, int] | None:
        """The (host, port) validation first opens a TCP connection to; None: no pre-check."""
        return None

    def _reach(self, config: Any, timeout: int) -> None:
        """Fail fast and plainly ("connection refused", "no answer") before the driver's retries.

        Skipped when a proxy is configured in the environment: then only the driver can tell.
        """
        address = self.socket_address(config)
        if address is None or any(os.environ.get(v) for v in PROXY_VARIABLES):
            return
        host, port = address
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except TimeoutError:
            raise ComputeTimeoutError(
                f"no answer from {host}:{port} within {timeout}s",
                provider=self.type_name,
                operation="validate_connection",
            ) from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ComputeConnectionError(
                f"cannot reach {host}:{port}: {reason}",
                provider=self.type_name,
                operation="validate_connection",
            ) from None

    def _probe(self, config: Any) -> str:
        """Connect through the driver and run a trivial query; return a short success note."""
        raise NotImplementedError

    # --- helpers ----------------------------------------------------------------------------------

    def _checked(self, config: PluginConfig, operation: str) -> Any:
        expected = self.config_model
        if not isinstance(config, expected):
            raise ComputeConfigurationError(
                f"expected a {expected.__name__}, got {type(config).__name__}",
                provider=self.type_name,
                operation=operation,
            )
        return config

    def _secret_ref(self, config: WarehouseConfig, compute_name: str, field: str) -> str | None:
        """The env_var reference for a secret field that is set, else None (key left out)."""
        value = getattr(config, field)
        if isinstance(value, SecretStr) and value.get_secret_value():
            return secret_reference(compute_name, field)
        return None

    def _result(
        self, status: str, started: float, message: str, correlation_id: str | None = None
    ) -> ConnectionResult:
        elapsed = max(round((time.perf_counter() - started) * 1000, 1), 0.1)
        log = logger.info if status == "ok" else logger.warning
        log("compute %s (%.1f ms)", message, elapsed)
        return ConnectionResult("ok" if status == "ok" else "failed", elapsed, message, correlation_id)


def describe(exc: BaseException, secrets: list[str]) -> str:
    """A driver exception on one line: its message and its root cause, secrets masked."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(parts) < 4:
        seen.add(id(current))
        text = " ".join(str(current).split())[:600] or type(current).__name__
        if not any(text in p for p in parts):
            parts.append(text if parts else f"{type(current).__name__}: {text}")
        if current.__cause__ is not None:
            current = current.__cause__
        else:
            current = None if current.__suppress_context__ else current.__context__
    return redact(" <- ".join(parts), secrets)


def drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


def is_set(value: object) -> bool:
    """A config value counts as given: a non-empty secret or a truthy value."""
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return bool(value)
