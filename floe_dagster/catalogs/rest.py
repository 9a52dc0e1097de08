"""Iceberg REST catalogs (any server speaking the Iceberg REST spec) and Apache Polaris.

Built on PyIceberg's ``RestCatalog``. :func:`rest_catalog_properties` is the one place where the
plugin config becomes PyIceberg properties: ``credential`` (``client_id:client_secret``),
``scope``, ``oauth2-server-uri``, ``header.X-Iceberg-Access-Delegation: vended-credentials`` and
two ``floe.*`` keys read by the small ``RestCatalog`` subclass built here:

* **Tokens.** PyIceberg's OAuth2 client-credentials flow fetches the token and, when a call
  answers 401 (the token expired or was revoked mid-session), re-authenticates once and repeats
  the call. PyIceberg 0.12 never refreshes *before* expiry, so the subclass' auth manager also
  refreshes ``token_refresh_margin_s`` before the ``expires_in`` the token endpoint announced
  (capped at half the token's lifetime).
* **Timeouts.** PyIceberg sets no HTTP timeout; every request (token endpoint included) gets
  ``request_timeout_s``.
* **Retries.** Each plugin operation is retried with exponential backoff and jitter (tenacity) on
  connection errors, timeouts, HTTP 5xx and 429 only, at most ``max_retries`` times; other 4xx
  answers are never retried, and neither is 501 (the server does not implement the endpoint:
  retrying cannot help, see :func:`is_transient`). When the attempts run out the error is a
  ``CatalogUnavailableError`` (``retryable=True``) whose ``attempts`` and message give the count.
  Each retry is logged with its wait (``extra["floe"]["wait_s"]``). Commits made through a ``Table``
  object (``table.append``) go straight to PyIceberg and are not retried by the plugin.

Errors: 401/403 and refused OAuth2 clients -> ``CatalogAuthenticationError`` (never retried, the secret
is never part of a message), 404 -> ``CatalogNotFoundError``, 409 -> ``CatalogConflictError``, 5xx/429 and
network failures -> ``CatalogUnavailableError``, 501 -> ``CatalogNotSupportedError``.

``vend_credentials`` loads the table with ``X-Iceberg-Access-Delegation: vended-credentials`` and
reads the S3 credentials the catalog put in the table's IO properties. Credentials without an
expiration, already expired, or valid for more than 24 h raise :class:`VendedCredentialsError`, a
``CatalogError``: the catalog's credential policy is wrong and retrying cannot help.

``polaris`` is the same plugin with Polaris' conventions: ``warehouse`` (the Polaris catalog
name) and client credentials are required, and the scope defaults to ``PRINCIPAL_ROLE:ALL``.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pyiceberg import exceptions as ice
from tenacity import RetryCallState

from floe_dagster.catalogs.pyiceberg_base import PyIcebergCatalogPlugin
from floe_dagster.core.compat import rest_catalog_with_timeouts
from floe_dagster.core.errors import (
    CatalogAuthenticationError,
    CatalogConflictError,
    CatalogError,
    CatalogNotFoundError,
    CatalogNotSupportedError,
    CatalogUnavailableError,
    ConfigurationError,
    FloeError,
)
from floe_dagster.core.retry import retry_policy
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.catalog import (
    MAX_VENDED_TTL_HOURS,
    Identifier,
    VendedCredentials,
)
from floe_dagster.plugins.gcs_warehouse import GcsWarehouseConfig, GcsWarehouseCredentials
from floe_dagster.plugins.redaction import SecretProperties, revealed

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

__all__ = [
    "IcebergRestEndpoint",
    "PolarisCatalogConfig",
    "PolarisCatalogPlugin",
    "RestCatalogConfig",
    "RestCatalogPlugin",
    "VendedCredentialsError",
    "parse_vended_credentials",
    "rest_catalog_properties",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

ACCESS_DELEGATION_HEADER = "header.X-Iceberg-Access-Delegation"
TOKEN_REFRESH_MARGIN = "floe.token-refresh-margin-s"
REQUEST_TIMEOUT = "floe.request-timeout-s"
VEND_OPERATIONS = frozenset({"read", "write"})

# Properties with a field of their own (secrets must come through SecretStr fields).
_RESERVED = {
    "type": "the plugin type",
    "uri": "the 'uri' field",
    "warehouse": "the 'warehouse' field",
    "credential": "the 'client_id' and 'client_secret' fields",
    "token": "the 'client_id' and 'client_secret' fields (static tokens are not supported)",
    "scope": "the 'scope' field",
    "oauth2-server-uri": "the 'oauth2_server_uri' field",
    TOKEN_REFRESH_MARGIN: "the 'token_refresh_margin_s' field",
    REQUEST_TIMEOUT: "the 'request_timeout_s' field",
}

# S3 credential keys as vended by Polaris and other REST catalogs (Iceberg's S3FileIO names).
_ACCESS_KEY = "s3.access-key-id"
_SECRET_KEY = "s3.secret-access-key"
_SESSION_TOKEN = "s3.session-token"
_EXPIRY_KEYS = ("s3.session-token-expires-at-ms", "expiration-time", "s3.session-token-expiration")
_OTHER_CREDENTIAL_KEYS = ("gcs.oauth2.token", "adls.sas-token")

# A per-thread override of the request timeout (health checks use their own, shorter one).
_timeout_override: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "floe_rest_timeout", default=None
)


class VendedCredentialsError(CatalogError):
    """The catalog vended credentials floe must not hand out: no expiry, expired, or TTL over 24 h.

    A ``CatalogError`` (not a ``ConfigurationError``): floe's config is fine, the catalog's
    credential policy is not. Not retryable: the catalog answers the same until it is changed.
    """


def _http_uri(value: str, field_name: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"'{value}' must be an http:// or https:// URL, e.g. http://polaris:8181/api/catalog"
        )
    if parts.username or parts.password:
        raise ValueError(f"put credentials in client_id/client_secret, not in the {field_name} URL")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ValueError(f"'{value}' has an invalid port") from None
    return value.strip().rstrip("/")


class RestCatalogConfig(PluginConfig):
    uri: str = Field(
        ...,
        description="Base URL of the Iceberg REST catalog, e.g. http://polaris:8181/api/catalog.",
    )
    warehouse: str | None = Field(
        None,
        description="Warehouse to ask the catalog for (Polaris: the catalog name). Unset: server default.",
    )
    client_id: str | None = Field(None, description="OAuth2 client id (client_credentials grant).")
    client_secret: SecretStr | None = Field(
        None, description="OAuth2 client secret, e.g. ${env:CATALOG_CLIENT_SECRET}."
    )
    scope: str | None = Field(
        None, description="OAuth2 scope requested with the token (unset: PyIceberg asks for 'catalog')."
    )
    oauth2_server_uri: str | None = Field(
        None, description="Token endpoint. Unset: <uri>/v1/oauth/tokens, as the REST spec defines."
    )
    token_refresh_margin_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="Refresh the token this long before it expires (at most half its lifetime).",
    )
    request_timeout_s: float = Field(
        30.0, gt=0, le=600, description="Timeout of every HTTP request (connect and read)."
    )
    max_retries: int = Field(
        3,
        ge=0,
        le=10,
        description="Retries of an operation on connection errors, timeouts, HTTP 5xx and 429 (not on 4xx).",
    )
    retry_backoff_s: float = Field(
        0.5, ge=0, le=60, description="First backoff before a retry; doubles each retry, plus jitter."
    )
    retry_max_backoff_s: float = Field(10.0, ge=0, le=600, description="Longest backoff between retries.")
    properties: SecretProperties = Field(
        default_factory=dict,
        description=(
            "Further PyIceberg RestCatalog/FileIO properties, e.g. s3.endpoint, s3.region, "
            "header.X-Custom, rest-page-size."
        ),
    )
    gcs: GcsWarehouseConfig | None = Field(
        None,
        description=(
            "The catalog's warehouse is on Google Cloud Storage and is not vended: the project, the"
            " endpoint and one credential mode for PyIceberg's FileIO and DuckDB (docs/object-stores.md)."
        ),
    )

    @field_validator("uri")
    @classmethod
    def _check_uri(cls, value: str) -> str:
        return _http_uri(value, "uri")

    @field_validator("oauth2_server_uri")
    @classmethod
    def _check_token_uri(cls, value: str | None) -> str | None:
        return None if value is None else _http_uri(value, "oauth2_server_uri")

    @field_validator("properties")
    @classmethod
    def _no_reserved_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key in _RESERVED or key.startswith("auth"):
                where = _RESERVED.get(key, "the plugin (OAuth2 client credentials)")
                raise ValueError(f"'{key}' is set by {where}, not in properties")
        return value

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> RestCatalogConfig:
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError("client_id and client_secret go together: set both or neither")
        if self.client_id is not None and ":" in self.client_id:
            raise ValueError("client_id must not contain ':'")
        return self


class PolarisCatalogConfig(RestCatalogConfig):
    warehouse: str = Field(..., description="Name of the Polaris catalog to use.")
    client_id: str = Field(..., description="Client id of the Polaris principal.")
    client_secret: SecretStr = Field(
        ..., description="Client secret of the Polaris principal, e.g. ${env:POLARIS_CLIENT_SECRET}."
    )
    scope: str = Field("PRINCIPAL_ROLE:ALL", description="OAuth2 scope: the principal roles to activate.")


@dataclass(frozen=True)
class IcebergRestEndpoint:
    """How an engine with its own Iceberg REST client (DuckDB's iceberg extension) reaches this catalog.

    Built from the catalog plugin's config by :meth:`RestCatalogPlugin.iceberg_rest_endpoint`, so a
    compute never copies the catalog's endpoint or credentials into its own config. The secret
    stays a ``SecretStr``; the engine that needs it in clear reads it at the last moment.
    """

    uri: str
    warehouse: str | None
    client_id: str | None
    client_secret: SecretStr | None
    oauth2_server_uri: str | None
    scope: str
    vended_credentials: bool

    @property
    def has_credentials(self) -> bool:
        return self.client_id is not None and self.client_secret is not None


def rest_catalog_properties(config: RestCatalogConfig) -> dict[str, str]:
    """The PyIceberg ``RestCatalog`` properties for ``config`` (the only place they are built)."""
    props = {
        ACCESS_DELEGATION_HEADER: "vended-credentials",
        **(GcsWarehouseCredentials(config.gcs).file_io_properties() if config.gcs else {}),
        **revealed(config.properties),
        "type": "rest",
        "uri": config.uri,
        TOKEN_REFRESH_MARGIN: f"{config.token_refresh_margin_s:g}",
        REQUEST_TIMEOUT: f"{config.request_timeout_s:g}",
    }
    if config.warehouse:
        props["warehouse"] = config.warehouse
    if config.client_id is not None and config.client_secret is not None:
        props["credential"] = f"{config.client_id}:{config.client_secret.get_secret_value()}"
        props["oauth2-server-uri"] = config.oauth2_server_uri or f"{config.uri}/v1/oauth/tokens"
    if config.scope:
        props["scope"] = config.scope
    return props


def _status_of(exc: BaseException | None) -> int | None:
    """The HTTP status behind ``exc``: its own response, or that of the HTTPError it was raised from."""
    for candidate in (exc, exc.__cause__ if exc is not None else None):
        status = getattr(getattr(candidate, "response", None), "status_code", None)
        if isinstance(status, int):
            return status
    return None


def is_transient(exc: BaseException) -> bool:
    """Retry on connection errors, timeouts, HTTP 5xx (but 501) and 429; never on other 4xx.

    501 Not Implemented is a 5xx that retrying cannot fix: the server does not implement the
    endpoint (the REST spec's ``UnsupportedOperationException``) and answers the same every
    time, so it is a ``CatalogNotSupportedError`` at once instead of a wait through every backoff.
    """
    import requests

    if isinstance(exc, ice.CommitStateUnknownException):
        return False  # the commit may have happened: only a reload can tell
    if isinstance(exc, ice.ServiceUnavailableError | ice.ServerError | ice.TooManyRequestsError):
        return True
    if isinstance(exc, requests.ConnectionError | requests.Timeout | ConnectionError | TimeoutError):
        return True
    status = _status_of(exc)
    return status is not None and (status == 429 or (status >= 500 and status != 501))


def _error_class(exc: Exception) -> type[FloeError] | None:
    """floe's class for REST failures the shared mapping does not know (by HTTP status), else None."""
    status = _status_of(exc)
    if isinstance(exc, ice.AuthorizationExpiredError) or status in (401, 403, 419):
        return CatalogAuthenticationError
    if is_transient(exc) or isinstance(exc, ice.CommitStateUnknownException):
        return CatalogUnavailableError
    if isinstance(exc, NotImplementedError) or status == 501:
        return CatalogNotSupportedError  # 501, or an endpoint the server does not list
    if status == 404:
        return CatalogNotFoundError
    if status == 409:
        return CatalogConflictError
    return None


def _parse_expiry(raw: str) -> datetime | None:
    text = raw.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)  # epoch milliseconds
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_vended_credentials(
    properties: dict[str, str], *, subject: str, provider: str, now: datetime | None = None
) -> VendedCredentials:
    """S3 credentials from vended IO properties, refused unless they expire within 24 h."""
    if _ACCESS_KEY not in properties or _SECRET_KEY not in properties:
        kinds = [k for k in _OTHER_CREDENTIAL_KEYS if any(p.startswith(k) for p in properties)]
        reason = (
            f"it vended {', '.join(kinds)} credentials, which are not S3 keys"
            if kinds
            else "no credentials came with the table (is access delegation enabled for this catalog?)"
        )
        raise CatalogNotSupportedError(
            f"catalog did not vend S3 credentials for {subject}: {reason}",
            provider=provider,
            operation="vend_credentials",
        )
    now = now or datetime.now(UTC)
    raw_expiry = next((properties[k] for k in _EXPIRY_KEYS if properties.get(k)), None)
    expiration = _parse_expiry(raw_expiry) if raw_expiry else None
    limit = now + timedelta(hours=MAX_VENDED_TTL_HOURS)
    problem = ""
    if expiration is None:
        problem = (
            "carry no readable expiration"
            if raw_expiry is None
            else f"carry an unreadable expiration {raw_expiry!r}"
        ) + f" (looked for {', '.join(_EXPIRY_KEYS)}), so their lifetime cannot be checked"
    elif expiration <= now:
        problem = f"expired already at {expiration.isoformat()}"
    elif expiration > limit:
        hours = (expiration - now).total_seconds() / 3600
        problem = (
            f"expire at {expiration.isoformat()}, {hours:.1f} h from now; floe accepts at most "
            f"{MAX_VENDED_TTL_HOURS} h: shorten the catalog's credential lifetime"
        )
    if problem:
        raise VendedCredentialsError(
            f"credentials vended for {subject} {problem}",
            provider=provider,
            operation="vend_credentials",
        )
    token = properties.get(_SESSION_TOKEN)
    return VendedCredentials(
        access_key_id=properties[_ACCESS_KEY],
        secret_access_key=SecretStr(properties[_SECRET_KEY]),
        session_token=SecretStr(token) if token else None,
        expiration=expiration,
    )


def _floe_rest_catalog(name: str, properties: dict[str, str]) -> Catalog:
    """A PyIceberg ``RestCatalog`` with request timeouts and proactive token refresh (it overrides
    private methods of PyIceberg's REST client: ``core/compat.py``)."""
    return rest_catalog_with_timeouts(
        name,
        properties,
        timeout_s=float(properties.get(REQUEST_TIMEOUT, "30")),
        refresh_margin_s=float(properties.get(TOKEN_REFRESH_MARGIN, "60")),
        timeout_override=_timeout_override.get,
    )


class RestCatalogPlugin(PyIcebergCatalogPlugin):
    type_name: ClassVar[str] = "rest"
    config_model: ClassVar[type[RestCatalogConfig]] = RestCatalogConfig
    config: RestCatalogConfig

    def catalog_properties(self) -> dict[str, str]:
        return rest_catalog_properties(self.config)

    def open_catalog(self) -> Catalog:
        return _floe_rest_catalog(self.name, self.catalog_properties())

    def duckdb_filesystem(self) -> Any:
        """The fsspec filesystem DuckDB registers to read this warehouse (GCS: gcsfs), or None."""
        return GcsWarehouseCredentials(self.config.gcs).duckdb_filesystem() if self.config.gcs else None

    # -- retries and errors ---------------------------------------------------------------------

    def _attempt(self, operation: str, subject: str, call: Callable[[], T]) -> T:
        attempts = 0
        limit = self.config.max_retries + 1

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            return call()

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            logger.warning(
                "catalog '%s': %s attempt %d/%d failed (%s); retrying in %.2fs",
                self.name,
                operation,
                state.attempt_number,
                limit,
                self._scrub(f"{type(exc).__name__}: {exc}".splitlines()[0]),
                wait,
                extra={
                    "floe": {
                        "catalog": self.name,
                        "operation": operation,
                        "attempt": state.attempt_number,
                        "max_attempts": limit,
                        "wait_s": wait,
                    }
                },
            )

        retrying = retry_policy(
            attempts=limit,
            retry_on=is_transient,
            # backoff, 2x backoff, 4x backoff ... capped, plus up to one backoff of jitter
            backoff_s=self.config.retry_backoff_s,
            backoff_max_s=self.config.retry_max_backoff_s,
            jitter="added",
            before_sleep=before_sleep,
        )
        try:
            return retrying(attempt)
        except FloeError:
            raise
        except Exception as exc:
            raise self.map_error(exc, operation, subject, attempts=attempts) from exc

    def map_error(
        self, exc: Exception, operation: str, subject: str = "", *, attempts: int | None = None
    ) -> FloeError:
        mapped = super().map_error(exc, operation, subject)
        target = _error_class(exc)
        if target is None or isinstance(mapped, target):
            target = type(mapped)
        message = self._scrub(mapped.message)
        if target is CatalogUnavailableError and attempts:
            plural = "s" if attempts != 1 else ""
            message = message.replace(" failed: ", f" failed after {attempts} attempt{plural}: ", 1)
            return CatalogUnavailableError(
                message, provider=self.type_name, operation=operation, attempts=attempts
            )
        return target(message, provider=self.type_name, operation=operation)

    def _scrub(self, text: str) -> str:
        secret = self.config.client_secret
        if secret is not None and secret.get_secret_value():
            text = text.replace(secret.get_secret_value(), "**********")
        for value in GcsWarehouseCredentials(self.config.gcs).secret_values() if self.config.gcs else []:
            text = text.replace(value, "**********")
        return text

    # -- credentials and health -----------------------------------------------------------------

    def vend_credentials(self, identifier: Identifier, operations: list[str]) -> VendedCredentials:
        """S3 credentials the catalog vends for ``identifier`` (loaded with access delegation).

        The REST spec has no per-request operation scope: the catalog vends what the principal
        may do with the table; ``operations`` is validated ("read", "write") and documents intent.
        """
        unknown = sorted(set(operations) - VEND_OPERATIONS)
        if not operations or unknown:
            raise ConfigurationError(
                f"catalog '{self.name}': vend_credentials operations must be a non-empty subset of "
                f"{sorted(VEND_OPERATIONS)}, got {operations!r}",
                provider=self.type_name,
                operation="vend_credentials",
            )
        subject = ".".join(identifier)
        table = self._run("vend_credentials", subject, lambda: self.connect().load_table(identifier))
        catalog_props = self.connect().properties
        response_config = getattr(table, "config", {}) or {}
        vended = {
            key: value
            for key, value in table.io.properties.items()
            if isinstance(value, str) and (key in response_config or catalog_props.get(key) != value)
        }
        return parse_vended_credentials(
            vended, subject=f"catalog '{self.name}' table {subject}", provider=self.type_name
        )

    @contextmanager
    def _probe_scope(self, timeout: float) -> Iterator[None]:
        """Health probes are one attempt (no tenacity) and bound every HTTP request by their timeout."""
        reset = _timeout_override.set(timeout)
        try:
            yield
        finally:
            _timeout_override.reset(reset)

    def iceberg_rest_endpoint(self) -> IcebergRestEndpoint:
        """The endpoint, warehouse and OAuth2 client of this catalog, for engines that attach it.

        Same values as PyIceberg's properties: the token endpoint defaults to
        ``<uri>/v1/oauth/tokens``, the scope to PyIceberg's ``catalog``, and vended credentials
        are asked for unless ``properties`` overrides the access-delegation header.
        """
        config = self.config
        has_client = config.client_id is not None and config.client_secret is not None
        delegation = self.catalog_properties().get(ACCESS_DELEGATION_HEADER, "")
        return IcebergRestEndpoint(
            uri=config.uri,
            warehouse=config.warehouse,
            client_id=config.client_id,
            client_secret=config.client_secret,
            oauth2_server_uri=(config.oauth2_server_uri or f"{config.uri}/v1/oauth/tokens")
            if has_client
            else None,
            scope=config.scope or "catalog",
            vended_credentials="vended-credentials" in [d.strip() for d in delegation.split(",")],
        )

    def describe(self) -> dict[str, str]:
        facts = {**super().describe(), "uri": self.config.uri}
        if self.config.warehouse:
            facts["warehouse"] = self.config.warehouse
        facts["auth"] = "oauth2-client-credentials" if self.config.client_id else "none"
        return facts


class PolarisCatalogPlugin(RestCatalogPlugin):
    """Apache Polaris: a REST catalog whose warehouse is the Polaris catalog name."""

    type_name: ClassVar[str] = "polaris"
    config_model = PolarisCatalogConfig
    config: PolarisCatalogConfig
