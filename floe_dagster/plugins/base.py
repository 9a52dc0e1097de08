"""What every plugin kind shares: a type name, a pydantic config model, an API version."""

from __future__ import annotations

from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = [
    "PLUGIN_API_VERSION",
    "Plugin",
    "PluginConfig",
    "located_error",
]

PLUGIN_API_VERSION = "1.0"


class PluginConfig(BaseModel):
    """Base of every plugin's config model: unknown keys are errors, secrets are SecretStr."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Which credentials the config's fields make (see plugins/metastore_auth.py): "thrift"
    # (auth, user, password, kerberos_service_name, io_properties), "google" (key_file, key_json,
    # anonymous), "aws" (an ``aws_config()`` method), "azure" (plugins/azure.py), or None (none).
    credential_kind: ClassVar[Literal["thrift", "aws", "google", "azure"] | None] = None


class Plugin:
    """Base of the three plugin kinds.

    Subclasses set ``type_name`` (the entry-point name used as ``type:`` in the manifest) and
    ``config_model``. Abstract methods of the kind's contract are enforced by ``abc``: a plugin
    that misses one fails at instantiation with the missing method named.
    """

    type_name: ClassVar[str]
    config_model: ClassVar[type[PluginConfig]] = PluginConfig
    plugin_api_version: ClassVar[str] = PLUGIN_API_VERSION
    version: ClassVar[str] = "0.1.0"

    @classmethod
    def parse_config(cls, raw: dict[str, Any]) -> PluginConfig:
        return cls.config_model.model_validate(raw)

    @classmethod
    def config_json_schema(cls) -> dict[str, Any]:
        return cls.config_model.model_json_schema()


def located_error(
    title: str, loc: tuple[str | int, ...], message: str, kind: str = "value_error"
) -> ValidationError:
    """A ``ValidationError`` at ``loc``, for a check that sees several fields but is about one.

    A plain ``ValueError`` from a model validator has an empty location, so the manifest could
    only point at the whole ``config`` block; pydantic-core re-raises a ``ValidationError``
    from a validator unchanged (inside a field validator, ``loc`` is relative to that field).
    No input is recorded (``None``), so neither pydantic nor the manifest loader can echo a
    value, and a secret cannot leak through the error.
    """
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError(kind, "{message}", {"message": message}),
                loc=loc,
                input=None,
            )
        ],
    )


def http_endpoint(value: str | None, example: str, query_hint: str | None = None) -> str | None:
    """An endpoint override (an emulator's, a private or regional one): an http(s) URL with a
    host and no user info, its trailing slash removed; None stays None. Every store and catalog
    config checks its endpoints here. ``query_hint``: a query string is refused too, with where
    its content belongs (Azure: a SAS goes in ``sas_token``)."""
    if value is None:
        return None
    parts = urlsplit(value.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL such as {example}")
    if query_hint is not None and (parts.username or parts.password or parts.query):
        raise ValueError(f"must not carry credentials or a query ({query_hint})")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials")
    return value.rstrip("/")
