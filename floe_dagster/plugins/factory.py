"""Instantiate the plugins a loaded manifest names (the only place plugins are constructed).

Metastore connectors get their config through ONE function, ``metastore_config``: the auth and
secret normalisation chokepoint. It infers the provider when the manifest does not name one
(``infer_metastore_provider``, also what the manifest schema calls for an entry without
``type``), merges the manifest's options with the environment variables the connector declares
(manifest first, then ``FLOE_METASTORE_<NAME>_<FIELD>``, then the provider's own variables such
as ``HIVE_METASTORE_URIS``), validates the result into the connector's config model (secrets as
``SecretStr``), and reports a missing or invalid field as an ``InvalidFieldError`` naming the
provider, the operation and the field -- never the value. The connector then receives typed
credentials from ``plugins/metastore_auth.py`` (the other half of the chokepoint).
``FLOE_METASTORE_DEBUG=1`` (or ``debug=True``) prints each connector's redacted diagnostics when
it is built.

``build_metastore(..., quick=True)`` is for listings made while a code location loads: one
attempt, short connect/read timeouts (``LOAD_TIME_LIMITS``), so an unreachable metastore costs
seconds, not a retry schedule.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from pydantic import ValidationError

from floe_dagster.core.errors import ConfigurationError, InvalidFieldError
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.catalog import CatalogPlugin
from floe_dagster.plugins.metastore import MetastoreConnector
from floe_dagster.plugins.registry import available_types, get_plugin_class

if TYPE_CHECKING:
    pass

__all__ = [
    "LOAD_TIME_LIMITS",
    "connect_metastore",
    "infer_metastore_provider",
    "load_time_config",
    "metastore_config",
]

DEBUG_ENV = "FLOE_METASTORE_DEBUG"
CONFIGURE = "configure"
# Config fields (of any metastore or catalog plugin that has them) lowered for a load-time
# listing: no retries, one attempt, short timeouts. Numbers are upper bounds (a lower setting
# in the manifest stays).
LOAD_TIME_LIMITS: dict[str, int | float] = {
    "retries": 0,
    "max_retries": 0,
    "max_attempts": 1,
    "api_max_attempts": 1,
    "connect_timeout_s": 2.0,
    "read_timeout_s": 5.0,
    "api_timeout_s": 5.0,
    "request_timeout_s": 5.0,
    "timeout_s": 5.0,
}
INFERENCE_RULES = (
    "config.catalog -> iceberg, a thrift:// uri -> hive, config.catalog_id -> glue,"
    " config.project + config.service -> dataproc, config.bucket -> s3"
)


def load_time_config(config: PluginConfig) -> PluginConfig:
    """``config`` with ``LOAD_TIME_LIMITS`` applied to the fields its model has."""
    fields = type(config).model_fields
    update: dict[str, Any] = {}
    for field_name, limit in LOAD_TIME_LIMITS.items():
        current = getattr(config, field_name, None) if field_name in fields else None
        if isinstance(current, int | float) and not isinstance(current, bool):
            update[field_name] = min(current, limit)
    return config.model_copy(update=update) if update else config


# --- the metastore auth / secret chokepoint ---------------------------------------------------------


def infer_metastore_provider(options: Mapping[str, Any]) -> str:
    """The connector type for options that name none (see ``INFERENCE_RULES``)."""
    if options.get("catalog"):
        return "iceberg"
    uri = str(options.get("uri") or "").split(",")[0].strip()
    scheme = urlsplit(uri).scheme if uri else ""
    if scheme == "thrift":
        return "hive"
    if scheme == "glue" or options.get("catalog_id"):
        return "glue"
    if options.get("project") and options.get("service"):
        return "dataproc"
    if options.get("bucket"):
        return "s3"
    hint = f" (uri scheme '{scheme}')" if scheme else ""
    raise InvalidFieldError(
        f"cannot infer the metastore provider from its config{hint}; set `type:` to one of"
        f" [{', '.join(available_types('metastores'))}] (inferred only from: {INFERENCE_RULES})",
        field="type",
        provider="-",
        operation=CONFIGURE,
    )


def env_names(cls: type[MetastoreConnector], name: str, field: str) -> list[str]:
    """The environment variables that can set ``field`` of metastore ``name``, in precedence order."""
    own = f"FLOE_METASTORE_{_env_token(name)}_{_env_token(field)}"
    return [own, *cls.env_options.get(field, ())]


def _env_token(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).upper()


def metastore_config(
    name: str,
    provider: str | None,
    options: Mapping[str, Any] | PluginConfig,
    *,
    environ: Mapping[str, str] | None = None,
    operation: str = CONFIGURE,
) -> tuple[str, PluginConfig]:
    """(provider, validated config) for metastore ``name``: the one place options meet the environment."""
    parsed = options if isinstance(options, PluginConfig) else None
    # A parsed config (the manifest loader validated it): keep its values, SecretStr included.
    raw = {k: getattr(parsed, k) for k in type(parsed).model_fields} if parsed else dict(options)
    provider = provider or infer_metastore_provider(raw)
    cls = cast(type[MetastoreConnector], get_plugin_class("metastores", provider))
    environ = os.environ if environ is None else environ
    fields = cls.config_model.model_fields
    changed = False
    for field_name in fields:
        if raw.get(field_name) not in (None, ""):
            continue
        for variable in env_names(cls, name, field_name):
            if environ.get(variable):
                raw[field_name], changed = environ[variable], True
                break
    try:
        if parsed is not None and not changed and isinstance(parsed, cls.config_model):
            config = parsed
        else:
            config = cls.config_model.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        field_path = ".".join(str(p) for p in error["loc"]) or "config"
        top = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] == "missing":
            raise _missing(name, provider, operation, field_path, env_names(cls, name, top)) from None
        # Never echo the input: it may be a secret.
        raise InvalidFieldError(
            f"metastore '{name}' (provider {provider}), operation {operation}: field '{field_path}'"
            f" {error['msg']}",
            field=field_path,
            provider=provider,
            operation=operation,
        ) from None
    for field_name in cls.required_options:
        if getattr(config, field_name, None) in (None, ""):
            raise _missing(name, provider, operation, field_name, env_names(cls, name, field_name))
    check = getattr(config, "check_required", None)
    if callable(check):
        for field_name in check():
            raise _missing(name, provider, operation, field_name, env_names(cls, name, field_name))
    return provider, config


def _missing(name: str, provider: str, operation: str, field: str, variables: list[str]) -> InvalidFieldError:
    return InvalidFieldError(
        f"metastore '{name}' (provider {provider}), operation {operation}: missing required field"
        f" '{field}'; set metastores.{name}.config.{field} or one of the environment variables"
        f" [{', '.join(variables)}]",
        field=field,
        provider=provider,
        operation=operation,
    )


def connect_metastore(
    name: str,
    provider: str | None,
    options: Mapping[str, Any] | PluginConfig,
    *,
    catalog: CatalogPlugin | None = None,
    environ: Mapping[str, str] | None = None,
    debug: bool | None = None,
    stream: IO[str] | None = None,
    quick: bool = False,
) -> MetastoreConnector:
    """A connector built through ``metastore_config``; with debug on, its redacted diagnostics are printed.

    ``quick``: the config with ``LOAD_TIME_LIMITS`` (one short attempt), for load-time listings.
    """
    provider, config = metastore_config(name, provider, options, environ=environ)
    if quick:
        config = load_time_config(config)
    cls = cast(type[MetastoreConnector], get_plugin_class("metastores", provider))
    if getattr(cls, "needs_catalog", False):
        if catalog is None:
            raise ConfigurationError(
                f"metastore '{name}' ({provider}) needs a catalog plugin",
                provider=provider,
                operation=CONFIGURE,
            )
        connector = cls(name, config, catalog=catalog)  # type: ignore[call-arg]
    else:
        connector = cls(name, config)
    environ = os.environ if environ is None else environ
    if debug is None:
        debug = bool(getattr(config, "debug", False)) or environ.get(DEBUG_ENV, "").lower() in (
            "1",
            "true",
            "yes",
        )
    if debug:
        (stream or sys.stderr).write(connector.debug_report())
    return connector
