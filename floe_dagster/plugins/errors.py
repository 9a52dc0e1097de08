"""One error taxonomy for every plugin kind.

Every error carries the ``provider`` (plugin type), the ``operation`` that failed and whether
retrying can help. Provider SDK exceptions are mapped to these at the plugin edge, so callers
(Dagster assets, the CLI) never see a PyIceberg, boto3 or Thrift exception type.
"""

from __future__ import annotations


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


class NotSupportedError(FloeError):
    """The provider does not support this operation; never answered by a silent empty result."""


class NotFoundError(FloeError):
    """The namespace, table or object does not exist."""


class ConflictError(FloeError):
    """The namespace or table already exists, or a concurrent change won."""


class AuthenticationError(FloeError):
    """The credentials were refused. Not retryable: the same credentials fail again."""


class UnavailableError(FloeError):
    """The service could not be reached or answered with a transient failure."""

    retryable = True


class CatalogError(FloeError):
    """Base for catalog plugin failures that fit no narrower class."""


class ComputeError(FloeError):
    """Base for compute plugin failures that fit no narrower class."""


class MetastoreError(FloeError):
    """Base for metastore connector failures that fit no narrower class."""
