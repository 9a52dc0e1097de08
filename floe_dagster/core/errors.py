"""One error taxonomy for every plugin kind.

Every error carries the ``provider`` (plugin type), the ``operation`` that failed and whether
retrying can help. Provider SDK exceptions are mapped to these at the plugin edge, so callers
(Dagster assets, the CLI) never see a PyIceberg, boto3 or Thrift exception type.
"""

from __future__ import annotations

import uuid

__all__ = [
    "AuthenticationError",
    "CatalogError",
    "CatalogUnavailableError",
    "CompatibilityError",
    "ComputeConfigurationError",
    "ComputeConnectionError",
    "ComputeError",
    "ComputeTimeoutError",
    "ConfigurationError",
    "ConflictError",
    "FloeError",
    "InvalidFieldError",
    "MetastoreError",
    "MissingLibraryError",
    "NotFoundError",
    "NotSupportedError",
    "PluginApiVersionError",
    "PluginNotFoundError",
    "UnavailableError",
    "new_correlation_id",
]


class FloeError(Exception):
    """Base of every error floe-dagster raises on purpose."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        operation: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.operation = operation
        if retryable is not None:
            self.retryable = retryable

    def tags(self) -> dict[str, str]:
        return {
            "provider": self.provider or "-",
            "operation": self.operation or "-",
            "retryable": str(self.retryable).lower(),
        }

    def __str__(self) -> str:
        where = ""
        if self.provider or self.operation:
            where = f"[{self.provider or '-'}:{self.operation or '-'}] "
        return f"{where}{self.message}"


class ConfigurationError(FloeError):
    """A plugin was given config it cannot work with (checked before any network call)."""


class PluginNotFoundError(ConfigurationError):
    """No installed plugin answers to the requested type."""


class PluginApiVersionError(PluginNotFoundError):
    """A plugin is installed for the type, but written for another major version of the plugin API."""


class NotSupportedError(FloeError):
    """The provider does not support this operation; never answered by a silent empty result."""


class NotFoundError(FloeError):
    """The namespace, table or object does not exist."""


class ConflictError(FloeError):
    """The namespace or table already exists, or a concurrent change won."""


class AuthenticationError(FloeError):
    """The credentials were refused. Not retryable: the same credentials fail again."""


class UnavailableError(FloeError):
    """The service could not be reached or answered with a transient failure.

    ``attempts``: how many calls were made before giving up, when the plugin counts them (None
    when it does not know); a tag too. The message says the same in words.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        operation: str | None = None,
        retryable: bool | None = None,
        attempts: int | None = None,
    ) -> None:
        super().__init__(message, provider=provider, operation=operation, retryable=retryable)
        self.attempts = attempts

    def tags(self) -> dict[str, str]:
        tags = super().tags()
        if self.attempts is not None:
            tags["attempts"] = str(self.attempts)
        return tags


class CatalogError(FloeError):
    """Base for catalog plugin failures that fit no narrower class."""


class CatalogNotFoundError(CatalogError, NotFoundError):
    """A catalog's namespace or table does not exist (``except CatalogError`` and
    ``except NotFoundError`` both catch it)."""


class CatalogConflictError(CatalogError, ConflictError):
    """A catalog's namespace or table already exists, or a concurrent commit won."""


class CatalogAuthenticationError(CatalogError, AuthenticationError):
    """The catalog refused the credentials."""


class CatalogNotSupportedError(CatalogError, NotSupportedError):
    """The catalog does not support this operation."""


class CatalogUnavailableError(CatalogError, UnavailableError):
    """The catalog could not be reached, or answered 5xx/429, after floe's bounded retries.

    ``attempts`` is counted by ``rest`` (its own tenacity retries) and ``glue`` (botocore's
    retries of a Glue error answer).
    """


def catalog_variant(kind: type[FloeError]) -> type[FloeError]:
    """The catalog's own class for an error kind (``NotFoundError`` -> ``CatalogNotFoundError``),
    so what a catalog raises is always a ``CatalogError`` too; other classes unchanged."""
    variants: dict[type[FloeError], type[FloeError]] = {
        NotFoundError: CatalogNotFoundError,
        ConflictError: CatalogConflictError,
        AuthenticationError: CatalogAuthenticationError,
        NotSupportedError: CatalogNotSupportedError,
        UnavailableError: CatalogUnavailableError,
        FloeError: CatalogError,
    }
    return variants.get(kind, kind)


def new_correlation_id() -> str:
    """12 hex digits identifying one failure (a compute error or a failed connection validation)."""
    return uuid.uuid4().hex[:12]


class ComputeError(FloeError):
    """Base for compute plugin failures that fit no narrower class.

    Every compute error carries a ``correlation_id``: ``str(error)`` ends with it and ``tags()``
    holds it, and a span it escapes (``telemetry.operation_span``) records it as
    ``floe.correlation_id``. Failed connection validations get one the same way, whatever the
    engine: ``telemetry.validate_compute`` puts it in the result's message, in
    ``ConnectionResult.correlation_id`` and on the validation span. So one failure can be found
    across the CLI output, Dagster's check metadata and the trace backend.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        operation: str | None = None,
        retryable: bool | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, operation=operation, retryable=retryable)
        self.correlation_id = correlation_id or new_correlation_id()

    def tags(self) -> dict[str, str]:
        return {**super().tags(), "correlation_id": self.correlation_id}

    def __str__(self) -> str:
        return f"{super().__str__()} (correlation id {self.correlation_id})"


class ComputeConnectionError(ComputeError):
    """The engine could not be reached or refused the connection."""

    retryable = True


class ComputeTimeoutError(ComputeError):
    """The engine did not answer within the configured timeout."""

    retryable = True


class ComputeConfigurationError(ComputeError, ConfigurationError):
    """A compute's config is unusable (checked before any connection is attempted)."""


class MetastoreError(FloeError):
    """Base for metastore connector failures that fit no narrower class."""


class CompatibilityError(ConfigurationError):
    """A private API of dagster, dagster-dbt, dbt-core, dbt-duckdb or PyIceberg that floe relies on
    (a seam of ``floe_dagster/core/compat.py``) is not usable with the installed release.

    ``seam`` names the private API, ``distribution`` the library, ``installed`` its installed
    version and ``supported`` the range the seam was written for.
    """

    def __init__(self, message: str, *, seam: str, distribution: str, installed: str, supported: str) -> None:
        super().__init__(message, provider=distribution, operation=seam)
        self.seam = seam
        self.distribution = distribution
        self.installed = installed
        self.supported = supported


class MissingLibraryError(CompatibilityError, ImportError):
    """The library a seam of ``core/compat.py`` uses is not installed (also an ImportError, so
    code that falls back when an optional library is missing keeps working)."""


class PartitionMetadataError(MetastoreError):
    """A partition's metadata does not fit its table (e.g. more or fewer values than the table
    has partition keys): the metastore holds malformed metadata, the same answer will fail again."""


class InvalidFieldError(ConfigurationError):
    """A value is missing or unusable; ``field`` names it (``storage.location``, ``uri`` ...)."""

    def __init__(
        self,
        message: str,
        *,
        field: str,
        provider: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, operation=operation, retryable=False)
        self.field = field

    def tags(self) -> dict[str, str]:
        return {**super().tags(), "field": self.field}
