"""PostgreSQL and Amazon Redshift computes (dbt-postgres and dbt-redshift targets).

Secrets never reach profiles.yml. The generated output reads the password from an environment
variable, ``password: "{{ env_var('FLOE_SECRET_<COMPUTE>_PASSWORD') }}"`` (``<COMPUTE>`` is the
compute name upper-cased, every other character than A-Z/0-9 replaced by ``_``), and
:func:`dbt_env` returns the variables the dbt subprocess of that compute must be given: the
caller merges them into the environment of ``dbt ... --target <compute>`` and nowhere else.

Query timeout (``timeout_seconds``):

- **postgres**: dbt-postgres has no profile key for ``statement_timeout`` (its credentials are
  host, port, user, password, dbname, schema, connect_timeout, role, search_path,
  keepalives_idle, sslmode, sslcert, sslkey, sslrootcert, application_name, autocommit,
  retries; there is no ``options``). libpq reads the ``options`` connection parameter from the
  ``PGOPTIONS`` environment variable when the caller passes none, so :func:`dbt_env` returns
  ``PGOPTIONS=-c statement_timeout=<n>s`` and every connection dbt opens for the target runs
  under that timeout. dbt-postgres only passes ``options`` itself for ``search_path``, which
  would override PGOPTIONS, so this plugin does not offer ``search_path``.
- **redshift**: neither dbt-redshift's profile nor redshift_connector can carry a statement
  timeout (redshift_connector does not read PGOPTIONS), so ``timeout_seconds`` is rejected with
  a pointer to Redshift's own mechanisms (a WLM query monitoring rule, or
  ``ALTER USER ... SET statement_timeout``).

``validate_connection`` opens a psycopg2 connection (Redshift speaks the PostgreSQL wire
protocol; psycopg2 was dbt-redshift's driver before 1.5) with the configured connect timeout,
runs ``SELECT 1`` and reports the latency. Failure messages name the host and port, never the
password.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from floe_dagster.computes.postgres_iceberg import commit_model_tables, model_tables, stage_catalog
from floe_dagster.computes.redshift_iam import (
    IAM_METHODS,
    RedshiftIamFields,
    RedshiftMethod,
    iam_dbt_env,
    iam_problems,
    iam_profile_keys,
    temporary_login,
)
from floe_dagster.plan.artifact import load_manifest_or_plan
from floe_dagster.plan.builders import build_catalog
from floe_dagster.plugins.base import PluginConfig, located_error
from floe_dagster.plugins.catalog import CatalogPlugin
from floe_dagster.plugins.compute import (
    REMOTE_ENGINE_PRESETS,
    ComputePlugin,
    ConnectionResult,
    DbtProfileContext,
    ResourceSpec,
    pick_preset,
    secret_env_name,
)

__all__ = [
    "PostgresComputePlugin",
    "PostgresConfig",
    "RedshiftComputePlugin",
    "RedshiftConfig",
    "dbt_env",
]

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
# The client encodings floe tests (docs/engines-postgres-snowflake.md); the server converts from its own.
ClientEncoding = Literal["UTF8", "GBK", "GB18030"]

# The engine is remote: a preset sizes the pod that runs dbt (a client), not the database.
PRESETS: dict[str, ResourceSpec] = REMOTE_ENGINE_PRESETS


class _WireProtocolConfig(PluginConfig):
    """What PostgreSQL and Redshift targets share."""

    host: str = Field(description="Server host name or address.")
    user: str = Field(description="Database user.")
    dbname: str = Field(description="Database name.")
    schema_: str = Field("public", alias="schema", description="Schema dbt builds models into.")
    sslmode: SslMode | None = Field(None, description="libpq sslmode.")
    connect_timeout: int = Field(10, ge=1, le=300, description="Seconds to wait for a connection.")
    threads: int = Field(1, ge=1, le=64, description="dbt's thread count for this target.")
    retries: int = Field(1, ge=0, le=10, description="dbt's connection retries.")
    timeout_seconds: int | None = Field(None, ge=1, description="Statement timeout (see module doc).")


class PostgresConfig(_WireProtocolConfig):
    port: int = Field(5432, ge=1, le=65535)
    password: SecretStr | None = Field(
        None,
        description="Password (use ${env:NAME}); none: libpq's PGPASSWORD / .pgpass of the dbt process.",
    )
    role: str | None = Field(None, description="`SET ROLE` after connecting.")
    keepalives_idle: int | None = Field(None, ge=1, description="TCP keepalive idle seconds.")
    application_name: str | None = Field(None, description="Shown in pg_stat_activity (dbt's default: dbt).")
    client_encoding: ClientEncoding | None = Field(
        None,
        description="libpq client encoding of every connection (PGCLIENTENCODING for dbt).",
    )
    iceberg_io: bool = Field(
        False,
        description="Copy the catalogs' tables in (read-only) before dbt and commit the models to"
        " transforms.catalog after (computes/postgres_iceberg.py).",
    )


class RedshiftConfig(RedshiftIamFields, _WireProtocolConfig):
    method: RedshiftMethod = Field(
        "database",
        description=(
            "dbt-redshift auth method: database (user/password), iam (temporary credentials for"
            " user from the Redshift API) or iam_role (the cluster's IAM role); see computes/redshift_iam.py."
        ),
    )
    port: int = Field(5439, ge=1, le=65535)
    password: SecretStr | None = Field(None, description="Password of method database (use ${env:NAME}).")
    sslmode: SslMode | None = Field("prefer", description="dbt-redshift sslmode (its default: prefer).")
    role: str | None = Field(None, description="`SET ROLE` after connecting.")
    autocommit: bool = Field(True, description="dbt-redshift's default: true.")
    ra3_node: bool = Field(False, description="Allow cross-database sources (RA3 nodes).")
    region: str | None = Field(None, description="AWS region of the cluster.")
    query_group: str | None = Field(None, description="WLM query group set on every connection.")

    @model_validator(mode="after")
    def _credentials_of_the_method(self) -> RedshiftConfig:
        if self.method == "database" and self.password is None:
            raise located_error(
                type(self).__name__, ("password",), "method database needs a password", "missing"
            )
        problem = iam_problems(self, self.method)
        if problem is not None:
            raise problem
        return self

    @field_validator("timeout_seconds")
    @classmethod
    def _no_statement_timeout(cls, value: int | None) -> int | None:
        if value is not None:
            raise ValueError(
                "dbt-redshift has no profile key for a statement timeout; set it in Redshift instead"
                " (a WLM query monitoring rule, or ALTER USER <user> SET statement_timeout TO <ms>)"
            )
        return value


def dbt_env(config: PluginConfig, compute_name: str) -> dict[str, str]:
    """Environment variables the dbt subprocess of ``compute_name`` needs (secrets included).

    Merge them into the environment of ``dbt ... --target <compute_name>`` only; never log them.
    """
    assert isinstance(config, PostgresConfig | RedshiftConfig)
    env: dict[str, str] = {}
    if config.password is not None:
        env[secret_env_name(compute_name)] = config.password.get_secret_value()
    if isinstance(config, PostgresConfig) and config.timeout_seconds:
        env["PGOPTIONS"] = statement_timeout_option(config.timeout_seconds)
    if isinstance(config, RedshiftConfig):  # IAM: the secret key, or AWS_* keys (no role assumed here)
        env.update(iam_dbt_env(config, compute_name, assume_role=False))
    if isinstance(config, PostgresConfig) and config.client_encoding:
        env["PGCLIENTENCODING"] = config.client_encoding
    return env


def statement_timeout_option(seconds: int) -> str:
    return f"-c statement_timeout={seconds}s"


def _password_reference(config: PostgresConfig | RedshiftConfig, compute_name: str) -> str:
    if config.password is None:
        return ""  # libpq then falls back to PGPASSWORD / .pgpass
    return "{{ env_var('" + secret_env_name(compute_name) + "') }}"


class _WireProtocolCompute(ComputePlugin):
    """Shared implementation; subclasses say which keys their dbt adapter takes."""

    package: ClassVar[str]

    def _profile(self, config: PostgresConfig | RedshiftConfig, context: DbtProfileContext) -> dict[str, Any]:
        return {
            "type": self.dbt_adapter_type,
            "host": config.host,
            "port": config.port,
            "user": config.user,
            "password": _password_reference(config, context.compute_name),
            "dbname": config.dbname,
            "schema": config.schema_,
            "threads": config.threads,
            "connect_timeout": config.connect_timeout,
            "retries": config.retries,
        }

    def get_required_dbt_packages(self) -> list[str]:
        return [self.package]

    def required_drivers(self, config: PluginConfig | None = None) -> dict[str, str]:
        return {"psycopg2": "psycopg2-binary"}  # validate_connection's driver (psycopg2 or -binary)

    def get_resource_requirements(self, workload_size: str) -> ResourceSpec:
        return pick_preset(PRESETS, workload_size, self.type_name)

    def dbt_env(self, config: PluginConfig, compute_name: str) -> dict[str, str]:
        return dbt_env(config, compute_name)

    def get_catalog_attachment_sql(self, catalog: CatalogPlugin) -> list[str] | None:
        return None  # the engine reads its own tables; Iceberg catalogs are not attached

    def _connect_kwargs(self, config: PostgresConfig | RedshiftConfig) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "host": config.host,
            "port": config.port,
            "user": config.user,
            "dbname": config.dbname,
            "connect_timeout": config.connect_timeout,
            "application_name": "floe-validate",
        }
        if config.password is not None:
            kwargs["password"] = config.password.get_secret_value()
        if isinstance(config, RedshiftConfig) and config.method in IAM_METHODS:
            kwargs["user"], kwargs["password"] = temporary_login(config)  # through the AWS chokepoint
        if config.sslmode:
            kwargs["sslmode"] = config.sslmode
        return kwargs

    def validate_connection(self, config: PluginConfig) -> ConnectionResult:
        assert isinstance(config, PostgresConfig | RedshiftConfig)
        where = f"{self.type_name} {config.user}@{config.host}:{config.port}/{config.dbname}"
        started = time.perf_counter()
        try:
            import psycopg2

            con = psycopg2.connect(**self._connect_kwargs(config))
            try:
                with con.cursor() as cur:
                    cur.execute("SELECT 1")
                    cur.fetchall()
            finally:
                con.close()
        except Exception as exc:
            elapsed = round((time.perf_counter() - started) * 1000, 1)
            return ConnectionResult("failed", elapsed, f"{where}: {_safe_detail(exc, config)}")
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        return ConnectionResult("ok", elapsed, f"{where} answered SELECT 1")


def _safe_detail(exc: Exception, config: PostgresConfig | RedshiftConfig) -> str:
    """The driver's message on one line, with the password masked should a driver ever echo it."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    secrets = [config.password]
    if isinstance(config, RedshiftConfig):
        secrets += [config.secret_access_key, config.session_token]
    for value in secrets:
        secret = value.get_secret_value() if value is not None else ""
        if secret:
            detail = detail.replace(secret, "**********")
    if "timeout expired" in detail:
        detail += f" (connect_timeout={config.connect_timeout}s)"
    if "no password supplied" in detail:
        detail += (
            "; set the compute's config.password (password: ${env:NAME}), or give the dbt process"
            " PGPASSWORD / a .pgpass file"
        )
    return detail


class PostgresComputePlugin(_WireProtocolCompute):
    type_name: ClassVar[str] = "postgres"
    config_model = PostgresConfig
    dbt_adapter_type = "postgres"
    package = "dbt-postgres>=1.11,<1.12"

    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        assert isinstance(config, PostgresConfig)
        output = self._profile(config, context)
        optional = {
            "sslmode": config.sslmode,
            "role": config.role,
            "keepalives_idle": config.keepalives_idle,
            "application_name": config.application_name,
        }
        output.update({key: value for key, value in optional.items() if value is not None})
        return output

    def _connect_kwargs(self, config: PostgresConfig | RedshiftConfig) -> dict[str, Any]:
        kwargs = super()._connect_kwargs(config)
        if config.timeout_seconds:
            kwargs["options"] = statement_timeout_option(config.timeout_seconds)
        if isinstance(config, PostgresConfig) and config.client_encoding:
            kwargs["client_encoding"] = config.client_encoding
        return kwargs

    # --- Iceberg in and out (iceberg_io: true; see computes/postgres_iceberg.py) ------------------

    def _iceberg_connection(self, config: PostgresConfig) -> Any:
        import psycopg2

        return psycopg2.connect(**{**self._connect_kwargs(config), "application_name": "floe-iceberg"})

    def prepare_dbt_run(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, str]:
        assert isinstance(config, PostgresConfig)
        if config.iceberg_io and context.catalogs:
            loaded = load_manifest_or_plan(context.manifest_path, context.environment)
            con = self._iceberg_connection(config)
            try:
                for name in context.catalogs:
                    stage_catalog(con, build_catalog(loaded, name))
            finally:
                con.close()
        return {}

    def finish_dbt_run(self, config: PluginConfig, context: DbtProfileContext) -> None:
        assert isinstance(config, PostgresConfig)
        if not config.iceberg_io or not context.write_catalog:
            return
        loaded = load_manifest_or_plan(context.manifest_path, context.environment)
        con = self._iceberg_connection(config)
        try:
            commit_model_tables(
                con, build_catalog(loaded, context.write_catalog), model_tables(con, config.schema_)
            )
        finally:
            con.close()


class RedshiftComputePlugin(_WireProtocolCompute):
    type_name: ClassVar[str] = "redshift"
    config_model = RedshiftConfig
    dbt_adapter_type = "redshift"
    package = "dbt-redshift>=1.11,<1.12"

    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        assert isinstance(config, RedshiftConfig)
        output = self._profile(config, context)
        output.update(
            {
                "method": config.method,
                "autocommit": config.autocommit,
                "ra3_node": config.ra3_node,
            }
        )
        optional = {
            "sslmode": config.sslmode,
            "role": config.role,
            "region": config.region,
            "query_group": config.query_group,
        }
        output.update({key: value for key, value in optional.items() if value is not None})
        if config.method in IAM_METHODS:
            output.pop("password")
            output.update(iam_profile_keys(config, context.compute_name))
        return output

    def prepare_dbt_run(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, str]:
        """IAM with ``role_arn``: the role's temporary keys, assumed now, for this dbt process only."""
        assert isinstance(config, RedshiftConfig)
        if config.role_arn is None or config.method not in IAM_METHODS:
            return {}
        return iam_dbt_env(config, context.compute_name, assume_role=True)
