"""Trino, Snowflake, Databricks, BigQuery and ClickHouse computes.

No server of these engines runs on this machine. What is tested here without one:

- profiles: dbt-trino, dbt-databricks, dbt-clickhouse, dbt-snowflake and dbt-bigquery are
  installed (``dev`` extra), so their own credentials classes parse the generated output after
  dbt's ``ProfileRenderer`` rendered the ``env_var`` references (no key list copied here);
- secrets: a canary never appears in a profile, a message, an error or a log record;
- bad input: a missing credential per auth method, an unknown workload size;
- the drivers for real against local sockets: a refused port fails at once, a port that
  accepts TCP and never answers fails after ``connect_timeout`` through each driver, a missing
  driver names the package to install.

The ``ok`` path of ``validate_connection`` needs a real service: each engine's contract test runs
when its ``FLOE_TEST_<ENGINE>_*`` variables are set and skips with that reason otherwise.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from floe_dagster.computes.bigquery import BigQueryComputePlugin, BigQueryConfig
from floe_dagster.computes.clickhouse import ClickHouseComputePlugin, ClickHouseConfig
from floe_dagster.computes.databricks import DatabricksComputePlugin, DatabricksConfig
from floe_dagster.computes.snowflake import SnowflakeComputePlugin, SnowflakeConfig
from floe_dagster.computes.trino import TrinoComputePlugin, TrinoConfig
from floe_dagster.plugins import ComputeConfigurationError, ConfigurationError, DbtProfileContext
from floe_dagster.plugins.compute import ComputePlugin, ConnectionResult
from tests.contract.contracts import ComputeContract

CANARY = f"canary-{uuid.uuid4()}"
COMPUTE = "wh-prod"


def keyfile_json(private_key: str = CANARY, token_uri: str = "https://oauth2.googleapis.com/token") -> str:
    import json

    return json.dumps(
        {
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "k1",
            "private_key": private_key,
            "client_email": "dbt@p.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": token_uri,
        }
    )


# One config per engine and auth method, every secret the canary.
CONFIGS: dict[str, tuple[ComputePlugin, dict[str, Any]]] = {
    "trino-ldap": (
        TrinoComputePlugin(),
        {
            "method": "ldap",
            "host": "trino.internal",
            "user": "u",
            "password": CANARY,
            "catalog": "iceberg",
            "schema": "analytics",
            "timeout_seconds": 30,
        },
    ),
    "trino-jwt": (
        TrinoComputePlugin(),
        {"method": "jwt", "host": "trino.internal", "jwt_token": CANARY, "catalog": "iceberg", "schema": "a"},
    ),
    "snowflake-password": (
        SnowflakeComputePlugin(),
        {
            "account": "myorg-acct",
            "user": "u",
            "password": CANARY,
            "database": "D",
            "warehouse": "W",
            "schema": "S",
            "role": "TRANSFORMER",
            "query_tag": "floe",
        },
    ),
    "snowflake-keypair": (
        SnowflakeComputePlugin(),
        {
            "account": "myorg-acct",
            "authenticator": "snowflake_jwt",
            "user": "u",
            "private_key": CANARY,
            "private_key_passphrase": CANARY + "-pass",
            "database": "D",
            "warehouse": "W",
            "schema": "S",
        },
    ),
    "snowflake-oauth": (
        SnowflakeComputePlugin(),
        {
            "account": "myorg-acct",
            "authenticator": "oauth",
            "token": CANARY,
            "oauth_client_id": "cid",
            "oauth_client_secret": CANARY + "-secret",
            "database": "D",
            "warehouse": "W",
            "schema": "S",
        },
    ),
    "databricks-token": (
        DatabricksComputePlugin(),
        {
            "host": "dbc-1.cloud.databricks.com",
            "http_path": "/sql/1.0/warehouses/abc",
            "catalog": "main",
            "schema": "analytics",
            "token": CANARY,
            "timeout_seconds": 600,
        },
    ),
    "databricks-oauth": (
        DatabricksComputePlugin(),
        {
            "host": "dbc-1.cloud.databricks.com",
            "http_path": "/sql/1.0/warehouses/abc",
            "schema": "analytics",
            "client_id": "sp-1",
            "client_secret": CANARY,
        },
    ),
    "bigquery-keyfile-json": (
        BigQueryComputePlugin(),
        {
            "method": "service-account-json",
            "project": "p",
            "dataset": "analytics",
            "keyfile_json": keyfile_json(),
            "location": "EU",
            "timeout_seconds": 300,
        },
    ),
    "bigquery-oauth-secrets": (
        BigQueryComputePlugin(),
        {
            "method": "oauth-secrets",
            "project": "p",
            "dataset": "analytics",
            "refresh_token": CANARY,
            "client_id": "cid",
            "client_secret": CANARY + "-secret",
            "token_uri": "https://oauth2.googleapis.com/token",
        },
    ),
    "clickhouse-http": (
        ClickHouseComputePlugin(),
        {
            "host": "ch.internal",
            "user": "dbt",
            "password": CANARY,
            "schema": "analytics",
            "secure": True,
            "timeout_seconds": 120,
        },
    ),
}


def context(compute_name: str = COMPUTE) -> DbtProfileContext:
    return DbtProfileContext(compute_name, "/tmp/manifest.yaml", "dev", "/tmp/state", (), None)


def parsed(case: str) -> tuple[ComputePlugin, Any]:
    plugin, raw = CONFIGS[case]
    return plugin, plugin.parse_config(raw)


def render(output: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """The output as dbt renders profiles.yml: env_var() and fromjson() evaluated by dbt itself."""
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    set_invocation_context({**os.environ, **env})
    try:
        return ProfileRenderer({}).render_data(yaml.safe_load(yaml.safe_dump(output)))
    finally:
        set_invocation_context(dict(os.environ))


def adapter_credentials(credentials_class: Any, rendered: dict[str, Any], *, build: bool = True) -> Any:
    data = {k: v for k, v in rendered.items() if k not in ("type", "threads")}
    data = credentials_class.translate_aliases(data)
    credentials_class.validate(data)
    return credentials_class.from_dict(data) if build else data


# --- the contract (the ok path needs a real service) -----------------------------------------


def live_config(engine: str, required: list[str], build: Any) -> Any:
    """A config from FLOE_TEST_<ENGINE>_* variables, or None when none is set (a partial set fails)."""
    prefix = f"FLOE_TEST_{engine.upper()}_"
    values = {name: os.environ.get(prefix + name.upper()) for name in required}
    if not any(values.values()):
        return None
    missing = [prefix + name.upper() for name, value in values.items() if not value]
    if missing:
        pytest.fail(f"incomplete credentials for the {engine} lane: set {', '.join(missing)}")
    return build(values, lambda name, default=None: os.environ.get(prefix + name.upper(), default))


class WarehouseContract(ComputeContract):
    engine: str
    required: list[str]
    offline_case: str

    def build(self, values: dict[str, str], optional: Any) -> dict[str, Any]:
        raise NotImplementedError

    @pytest.fixture
    def compute_config(self, compute: ComputePlugin) -> Any:
        live = live_config(self.engine, self.required, self.build)
        if live is not None:
            return compute.parse_config(live)
        return parsed(self.offline_case)[1]

    def test_validate_connection_measures_latency(self, compute, compute_config) -> None:  # type: ignore[no-untyped-def]
        prefix = f"FLOE_TEST_{self.engine.upper()}_"
        if live_config(self.engine, self.required, self.build) is None:
            pytest.skip(
                f"no {self.engine} service here: set {prefix}{{{','.join(r.upper() for r in self.required)}}}"
            )
        super().test_validate_connection_measures_latency(compute, compute_config)


class TestTrinoCompute(WarehouseContract):
    engine, required, offline_case = "trino", ["host", "user", "catalog", "schema"], "trino-ldap"

    def build(self, values: dict[str, str], optional: Any) -> dict[str, Any]:
        password = optional("password")
        return {
            **values,
            "port": int(optional("port", "443")),
            "method": "ldap" if password else "none",
            "password": password,
        }

    @pytest.fixture
    def compute(self) -> TrinoComputePlugin:
        return TrinoComputePlugin()


class TestSnowflakeCompute(WarehouseContract):
    engine, offline_case = "snowflake", "snowflake-password"
    required = ["account", "user", "password", "database", "warehouse", "schema"]

    def build(self, values: dict[str, str], optional: Any) -> dict[str, Any]:
        return {**values, "role": optional("role")}

    @pytest.fixture
    def compute(self) -> SnowflakeComputePlugin:
        return SnowflakeComputePlugin()


class TestDatabricksCompute(WarehouseContract):
    engine, required, offline_case = (
        "databricks",
        ["host", "http_path", "token", "schema"],
        "databricks-token",
    )

    def build(self, values: dict[str, str], optional: Any) -> dict[str, Any]:
        return {**values, "catalog": optional("catalog")}

    @pytest.fixture
    def compute(self) -> DatabricksComputePlugin:
        return DatabricksComputePlugin()


class TestBigQueryCompute(WarehouseContract):
    engine, required, offline_case = (
        "bigquery",
        ["project", "dataset", "keyfile_json"],
        "bigquery-keyfile-json",
    )

    def build(self, values: dict[str, str], optional: Any) -> dict[str, Any]:
        return {**values, "method": "service-account-json", "location": optional("location")}

    @pytest.fixture
    def compute(self) -> BigQueryComputePlugin:
        return BigQueryComputePlugin()


class TestClickHouseCompute(WarehouseContract):
    engine, required, offline_case = "clickhouse", ["host", "user", "password"], "clickhouse-http"

    def build(self, values: dict[str, str], optional: Any) -> dict[str, Any]:
        secure = optional("secure", "false").lower() in ("1", "true", "yes")
        return {**values, "port": int(optional("port", "8443" if secure else "8123")), "secure": secure}

    @pytest.fixture
    def compute(self) -> ClickHouseComputePlugin:
        return ClickHouseComputePlugin()


# --- profiles: the adapters' own keys, secrets only as env_var references ---------------------


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_profile_holds_no_secret_and_dbt_env_carries_them(case: str) -> None:
    plugin, config = parsed(case)
    output = plugin.generate_dbt_profile(config, context())
    text = yaml.safe_dump({"floe": {"target": COMPUTE, "outputs": {COMPUTE: output}}})
    assert CANARY not in text
    assert "FLOE_SECRET_WH_PROD_" in text
    env = plugin.dbt_env(config, COMPUTE)
    assert env and all(name.startswith("FLOE_SECRET_WH_PROD_") for name in env)
    assert any(CANARY in value for value in env.values())
    for name in env:  # every variable the dbt process gets is referenced by the profile
        assert name in text
    assert CANARY not in repr(config) and CANARY not in str(config) and CANARY not in config.model_dump_json()


def test_trino_profile_is_accepted_by_dbt_trino() -> None:
    from dbt.adapters.trino.connections import (
        TrinoCredentialsFactory,
        TrinoJwtCredentials,
        TrinoLdapCredentials,
    )

    plugin, config = parsed("trino-ldap")
    output = plugin.generate_dbt_profile(config, context())
    assert output["http_scheme"] == "https" and output["port"] == 443
    creds = adapter_credentials(TrinoCredentialsFactory, render(output, plugin.dbt_env(config, COMPUTE)))
    assert isinstance(creds, TrinoLdapCredentials)
    assert (creds.host, creds.user, creds.password, creds.database, creds.schema) == (
        "trino.internal",
        "u",
        CANARY,
        "iceberg",
        "analytics",
    )
    assert creds.session_properties == {"query_max_run_time": "30s"}

    plugin, config = parsed("trino-jwt")
    output = plugin.generate_dbt_profile(config, context())
    creds = adapter_credentials(TrinoCredentialsFactory, render(output, plugin.dbt_env(config, COMPUTE)))
    assert isinstance(creds, TrinoJwtCredentials) and creds.jwt_token == CANARY


def test_databricks_profile_is_accepted_by_dbt_databricks() -> None:
    from dbt.adapters.databricks.credentials import DatabricksCredentials

    plugin, config = parsed("databricks-token")
    output = plugin.generate_dbt_profile(config, context())
    creds = adapter_credentials(DatabricksCredentials, render(output, plugin.dbt_env(config, COMPUTE)))
    assert (creds.host, creds.http_path, creds.database, creds.schema, creds.token) == (
        "dbc-1.cloud.databricks.com",
        "/sql/1.0/warehouses/abc",
        "main",
        "analytics",
        CANARY,
    )
    assert creds.session_properties == {"STATEMENT_TIMEOUT": 600}

    # OAuth M2M: schema-validated only (building the credentials authenticates over the network)
    plugin, config = parsed("databricks-oauth")
    output = plugin.generate_dbt_profile(config, context())
    assert output["auth_type"] == "oauth" and output["client_id"] == "sp-1"
    data = adapter_credentials(
        DatabricksCredentials, render(output, plugin.dbt_env(config, COMPUTE)), build=False
    )
    assert data["client_secret"] == CANARY
    assert set(output) <= {f.name for f in __import__("dataclasses").fields(DatabricksCredentials)} | {
        "type",
        "threads",
        "catalog",
    }


def test_databricks_custom_port_goes_to_connection_parameters() -> None:
    from dbt.adapters.databricks.credentials import DatabricksCredentials

    config = DatabricksConfig.model_validate(
        {"host": "h", "http_path": "sql/protocolv1/o/1/abc", "schema": "s", "token": CANARY, "port": 8443}
    )
    output = DatabricksComputePlugin().generate_dbt_profile(config, context())
    creds = adapter_credentials(
        DatabricksCredentials, render(output, DatabricksComputePlugin().dbt_env(config, COMPUTE))
    )
    assert creds.connection_parameters["_port"] == 8443


def test_clickhouse_profile_is_accepted_by_dbt_clickhouse() -> None:
    from dbt.adapters.clickhouse.credentials import ClickHouseCredentials

    plugin, config = parsed("clickhouse-http")
    output = plugin.generate_dbt_profile(config, context())
    creds = adapter_credentials(ClickHouseCredentials, render(output, plugin.dbt_env(config, COMPUTE)))
    assert (creds.host, creds.port, creds.user, creds.password, creds.schema, creds.secure) == (
        "ch.internal",
        8443,
        "dbt",
        CANARY,
        "analytics",
        True,
    )
    assert creds.custom_settings == {"max_execution_time": 120}

    # no password configured: the key is left out and dbt-clickhouse's default (empty) applies
    config = ClickHouseConfig.model_validate({"host": "ch.internal", "driver": "native"})
    output = ClickHouseComputePlugin().generate_dbt_profile(config, context())
    assert "password" not in output and output["port"] == 9000
    assert adapter_credentials(ClickHouseCredentials, render(output, {})).password == ""


@pytest.mark.parametrize("case", ["snowflake-password", "snowflake-keypair", "snowflake-oauth"])
def test_snowflake_profile_is_accepted_by_dbt_snowflake(case: str) -> None:
    from dbt.adapters.snowflake.connections import SnowflakeCredentials

    plugin, config = parsed(case)
    output = plugin.generate_dbt_profile(config, context())
    creds = adapter_credentials(SnowflakeCredentials, render(output, plugin.dbt_env(config, COMPUTE)))
    assert (creds.account, creds.database, creds.warehouse, creds.schema) == ("myorg-acct", "D", "W", "S")
    if case == "snowflake-password":
        assert creds.password == CANARY and creds.authenticator == "snowflake"
        assert creds.role == "TRANSFORMER" and creds.query_tag == "floe"
        # what dbt-snowflake hands the connector
        args = creds.auth_args()
        assert (args["user"], args["password"], args["authenticator"]) == ("u", CANARY, "snowflake")
    elif case == "snowflake-keypair":  # the documented key-pair profile has no authenticator
        assert creds.authenticator is None and creds.private_key == CANARY
        assert creds.private_key_passphrase == CANARY + "-pass"
    else:
        assert creds.authenticator == "oauth" and creds.token == CANARY
        assert (creds.oauth_client_id, creds.oauth_client_secret) == ("cid", CANARY + "-secret")


def test_snowflake_key_pair_reaches_the_connector_as_a_key() -> None:
    """dbt-snowflake itself decodes the PEM key of the generated profile (its auth_args)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from dbt.adapters.snowflake.connections import SnowflakeCredentials

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass-phrase"),
    ).decode()
    config = SnowflakeConfig.model_validate(
        {
            "account": "a",
            "authenticator": "snowflake_jwt",
            "user": "u",
            "private_key": pem,
            "private_key_passphrase": "pass-phrase",
            "database": "d",
            "warehouse": "w",
            "schema": "s",
        }
    )
    plugin = SnowflakeComputePlugin()
    output = plugin.generate_dbt_profile(config, context())
    assert "BEGIN" not in yaml.safe_dump(output)
    creds = adapter_credentials(SnowflakeCredentials, render(output, plugin.dbt_env(config, COMPUTE)))
    der = creds.auth_args()["private_key"]
    expected = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert der == expected


@pytest.mark.parametrize("case", ["bigquery-keyfile-json", "bigquery-oauth-secrets"])
def test_bigquery_profile_is_accepted_by_dbt_bigquery(case: str) -> None:
    from dbt.adapters.bigquery.credentials import BigQueryCredentials

    plugin, config = parsed(case)
    output = plugin.generate_dbt_profile(config, context())
    creds = adapter_credentials(BigQueryCredentials, render(output, plugin.dbt_env(config, COMPUTE)))
    # dbt-bigquery's aliases: project -> database, dataset -> schema
    assert (creds.method, creds.database, creds.schema) == (config.method, "p", "analytics")
    if case == "bigquery-keyfile-json":
        # dbt-bigquery wants keyfile_json as a mapping: fromjson(env_var(...)) renders to one
        assert isinstance(creds.keyfile_json, dict)
        assert creds.keyfile_json["private_key"] == CANARY
        assert creds.job_execution_timeout_seconds == 300 and creds.location == "EU"
    else:
        assert creds.refresh_token == CANARY and creds.client_secret == CANARY + "-secret"
        assert (creds.client_id, creds.token_uri) == ("cid", "https://oauth2.googleapis.com/token")


# --- bad input ---------------------------------------------------------------------------------

MISSING = [
    (TrinoConfig, {"method": "ldap", "host": "h", "user": "u", "catalog": "c", "schema": "s"}, "'password'"),
    (TrinoConfig, {"method": "jwt", "host": "h", "catalog": "c", "schema": "s"}, "'jwt_token'"),
    (
        SnowflakeConfig,
        {"account": "a", "user": "u", "database": "d", "warehouse": "w", "schema": "s"},
        "'password'",
    ),
    (
        SnowflakeConfig,
        {
            "account": "a",
            "user": "u",
            "authenticator": "snowflake_jwt",
            "database": "d",
            "warehouse": "w",
            "schema": "s",
        },
        "'private_key'",
    ),
    (
        SnowflakeConfig,
        {"account": "a", "authenticator": "oauth", "database": "d", "warehouse": "w", "schema": "s"},
        "'token'",
    ),
    (DatabricksConfig, {"host": "h", "http_path": "/sql/1.0/warehouses/x", "schema": "s"}, "'token'"),
    (DatabricksConfig, {"host": "h", "http_path": "/p", "schema": "s", "client_id": "c"}, "'client_secret'"),
    (BigQueryConfig, {"method": "service-account-json", "project": "p", "dataset": "d"}, "'keyfile_json'"),
    (BigQueryConfig, {"method": "service-account", "project": "p", "dataset": "d"}, "'keyfile'"),
    (
        BigQueryConfig,
        {"method": "oauth-secrets", "project": "p", "dataset": "d", "refresh_token": CANARY},
        "client_id, client_secret, token_uri",
    ),
]


@pytest.mark.parametrize(("model", "raw", "field"), MISSING)
def test_missing_credential_is_a_clear_error_naming_the_field(
    model: Any, raw: dict[str, Any], field: str
) -> None:
    raw = {**raw, "role": CANARY} if model is SnowflakeConfig else raw
    with pytest.raises(ValidationError) as info:
        model.model_validate(raw)
    message = str(info.value)
    assert field in message, message
    assert CANARY not in message  # pydantic would echo the whole input mapping without hide_input_in_errors


@pytest.mark.parametrize(
    ("model", "raw", "needle"),
    [
        (
            TrinoConfig,
            {
                "method": "ldap",
                "host": "h",
                "port": 8080,
                "http_scheme": "http",
                "user": "u",
                "password": CANARY,
                "catalog": "c",
                "schema": "s",
            },
            "https",
        ),
        (
            SnowflakeConfig,
            {
                "account": "a",
                "user": "u",
                "password": CANARY,
                "database": "d",
                "warehouse": "w",
                "schema": "s",
                "timeout_seconds": 60,
            },
            "STATEMENT_TIMEOUT_IN_SECONDS",
        ),
        (
            SnowflakeConfig,
            {
                "account": "a",
                "user": "u",
                "authenticator": "snowflake_jwt",
                "private_key": CANARY,
                "private_key_path": "/k.p8",
                "database": "d",
                "warehouse": "w",
                "schema": "s",
            },
            "exactly one of",
        ),
        (DatabricksConfig, {"host": "https://h/", "http_path": "/p", "schema": "s", "token": CANARY}, "bare"),
        (
            DatabricksConfig,
            {
                "host": "h",
                "http_path": "sql/protocolv1/o/1/c",
                "schema": "s",
                "token": CANARY,
                "timeout_seconds": 60,
            },
            "SQL warehouses",
        ),
        (
            BigQueryConfig,
            {"method": "service-account-json", "project": "p", "dataset": "d", "keyfile_json": "{" + CANARY},
            "not valid JSON",
        ),
        (ClickHouseConfig, {"host": "h", "password": CANARY, "port": 70000}, "port"),
    ],
)
def test_inconsistent_config_is_rejected_without_the_secret(
    model: Any, raw: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(raw)
    assert needle in str(info.value) and CANARY not in str(info.value)


@pytest.mark.parametrize(
    "plugin",
    [
        TrinoComputePlugin(),
        SnowflakeComputePlugin(),
        DatabricksComputePlugin(),
        BigQueryComputePlugin(),
        ClickHouseComputePlugin(),
    ],
)
def test_unknown_workload_size_lists_presets(plugin: ComputePlugin) -> None:
    with pytest.raises(ConfigurationError) as info:
        plugin.get_resource_requirements("xl")
    message = str(info.value)
    assert "'xl'" in message and all(size in message for size in ("small", "medium", "large"))
    assert info.value.provider == plugin.type_name and "correlation id" in message
    assert plugin.get_resource_requirements("large").as_k8s()["limits"] == {"cpu": "2", "memory": "4Gi"}


def test_a_config_of_another_plugin_is_a_configuration_error() -> None:
    _, trino_config = parsed("trino-ldap")
    with pytest.raises(ComputeConfigurationError) as info:
        SnowflakeComputePlugin().generate_dbt_profile(trino_config, context())
    assert "SnowflakeConfig" in str(info.value) and info.value.provider == "snowflake"


def test_secrets_are_write_only_in_the_json_schema() -> None:
    for plugin, fields in (
        (TrinoComputePlugin(), ["password", "jwt_token"]),
        (
            SnowflakeComputePlugin(),
            ["password", "private_key", "private_key_passphrase", "token", "oauth_client_secret"],
        ),
        (DatabricksComputePlugin(), ["token", "client_secret"]),
        (BigQueryComputePlugin(), ["keyfile_json", "token", "refresh_token", "client_secret"]),
        (ClickHouseComputePlugin(), ["password"]),
    ):
        properties = plugin.config_json_schema()["properties"]
        for name in fields:
            options = properties[name].get("anyOf", [properties[name]])
            assert any(o.get("format") == "password" and o.get("writeOnly") for o in options), (plugin, name)


# --- the drivers against local sockets ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never answers (a hung endpoint)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


def local_configs(port: int, timeout: int) -> list[tuple[ComputePlugin, Any]]:
    """Every engine (and ClickHouse's two drivers) pointed at 127.0.0.1:port, canary secrets."""
    raw = [
        (
            TrinoComputePlugin(),
            {
                "method": "ldap",
                "host": "127.0.0.1",
                "port": port,
                "user": "u",
                "password": CANARY,
                "catalog": "c",
                "schema": "s",
            },
        ),
        (
            SnowflakeComputePlugin(),
            {
                "account": "acct",
                "user": "u",
                "password": CANARY,
                "database": "d",
                "warehouse": "w",
                "schema": "s",
                "host": "127.0.0.1",
                "port": port,
            },
        ),
        (
            DatabricksComputePlugin(),
            {
                "host": "127.0.0.1",
                "port": port,
                "http_path": "/sql/1.0/warehouses/x",
                "schema": "s",
                "token": CANARY,
            },
        ),
        (
            BigQueryComputePlugin(),
            {
                "method": "oauth-secrets",
                "project": "p",
                "dataset": "d",
                "token": CANARY,
                "api_endpoint": f"http://127.0.0.1:{port}",
            },
        ),
        (ClickHouseComputePlugin(), {"host": "127.0.0.1", "port": port, "password": CANARY}),
        (
            ClickHouseComputePlugin(),
            {"driver": "native", "host": "127.0.0.1", "port": port, "password": CANARY},
        ),
    ]
    return [(p, p.parse_config({**r, "connect_timeout": timeout})) for p, r in raw]


def assert_failed_cleanly(result: ConnectionResult, plugin: ComputePlugin, port: int) -> None:
    assert isinstance(result, ConnectionResult) and result.status == "failed" and not result.ok
    assert result.message.startswith(plugin.type_name + " "), result.message
    assert f"127.0.0.1:{port}" in result.message, result.message
    assert "correlation id" in result.message
    assert CANARY not in result.message and CANARY not in repr(result)
    assert result.latency_ms > 0


def test_refused_endpoint_fails_at_once_naming_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    for plugin, config in local_configs(port, timeout=5):
        started = time.monotonic()
        result = plugin.validate_connection(config)
        assert time.monotonic() - started < 3, plugin.type_name
        assert_failed_cleanly(result, plugin, port)
        assert "Connection refused" in result.message
    assert CANARY not in caplog.text
    assert "validating the connection" in caplog.text


def test_through_validate_compute_each_failure_names_the_compute(caplog: pytest.LogCaptureFixture) -> None:
    """What `floe health` and the Dagster check show: the compute's name first, one correlation id."""
    from floe_dagster.plugins.telemetry import validate_compute

    caplog.set_level(logging.DEBUG)
    port = free_port()
    for plugin, config in local_configs(port, timeout=5):
        result = validate_compute(plugin, config, COMPUTE)
        assert result.message.startswith(f"compute '{COMPUTE}' ({plugin.type_name}): {plugin.type_name} ")
        assert f"127.0.0.1:{port}" in result.message and "Connection refused" in result.message
        assert result.message.count("correlation id") == 1
        assert result.message.endswith(f"(correlation id {result.correlation_id})")
        assert CANARY not in result.message
    assert CANARY not in caplog.text


def test_hung_endpoint_through_validate_compute_names_the_compute_and_the_timeout(silent_port: int) -> None:
    from floe_dagster.plugins.telemetry import validate_compute

    plugin, config = local_configs(silent_port, timeout=1)[0]
    result = validate_compute(plugin, config, COMPUTE)
    assert result.message.startswith(f"compute '{COMPUTE}' (trino): trino ")
    assert f"127.0.0.1:{silent_port}" in result.message and "(connect_timeout=1s)" in result.message
    assert CANARY not in result.message


def test_hung_endpoint_fails_after_connect_timeout_through_each_driver(
    silent_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for plugin, config in local_configs(silent_port, timeout=1):
        started = time.monotonic()
        result = plugin.validate_connection(config)
        elapsed = time.monotonic() - started
        assert 0.9 < elapsed < 6, (plugin.type_name, elapsed)
        assert_failed_cleanly(result, plugin, silent_port)
        assert "connect_timeout=1s" in result.message, result.message
    assert CANARY not in caplog.text


def test_service_account_json_token_refresh_failure_keeps_the_key_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real RSA key signs the token request; the token endpoint is refused; nothing leaks."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    caplog.set_level(logging.DEBUG)
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    port = free_port()
    with socket.socket() as api:  # the API answers TCP, so the failure is the token endpoint's
        api.bind(("127.0.0.1", 0))
        api.listen(8)
        config = BigQueryConfig.model_validate(
            {
                "method": "service-account-json",
                "project": "p",
                "dataset": "d",
                "keyfile_json": keyfile_json(pem, token_uri=f"http://127.0.0.1:{port}/token"),
                "api_endpoint": f"http://127.0.0.1:{api.getsockname()[1]}",
                "connect_timeout": 2,
            }
        )
        started = time.monotonic()
        result = BigQueryComputePlugin().validate_connection(config)
    assert time.monotonic() - started < 5
    assert result.status == "failed" and f"port={port}" in result.message and "/token" in result.message
    key_body = pem.splitlines()[1]
    assert key_body not in result.message and key_body not in caplog.text


def test_snowflake_unreadable_private_key_fails_without_the_key(silent_port: int) -> None:
    config = SnowflakeConfig.model_validate(
        {
            "account": "a",
            "user": "u",
            "authenticator": "snowflake_jwt",
            "private_key": CANARY,
            "database": "d",
            "warehouse": "w",
            "schema": "s",
            "host": "127.0.0.1",
            "port": silent_port,
        }
    )
    result = SnowflakeComputePlugin().validate_connection(config)
    assert result.status == "failed" and "private key could not be read" in result.message
    assert CANARY not in result.message


@pytest.mark.parametrize(
    ("index", "module", "package"),
    [
        (0, "trino.dbapi", "trino"),
        (1, "snowflake.connector", "snowflake-connector-python"),
        (2, "databricks.sql", "databricks-sql-connector"),
        (3, "google.cloud.bigquery", "google-cloud-bigquery"),
        (4, "clickhouse_connect", "clickhouse-connect"),
        (5, "clickhouse_driver", "clickhouse-driver"),
    ],
)
def test_missing_driver_names_the_package_to_install(
    index: int, module: str, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import of it now raises ImportError
    plugin, config = local_configs(free_port(), timeout=1)[index]
    result = plugin.validate_connection(config)
    assert result.status == "failed"
    assert f"'{package}' is not installed" in result.message and "floe-dagster[warehouses]" in result.message


def test_entry_points_register_the_warehouse_computes() -> None:
    from floe_dagster.plugins.registry import get_plugin_class

    for name, cls in (
        ("trino", TrinoComputePlugin),
        ("snowflake", SnowflakeComputePlugin),
        ("databricks", DatabricksComputePlugin),
        ("bigquery", BigQueryComputePlugin),
        ("clickhouse", ClickHouseComputePlugin),
    ):
        assert get_plugin_class("computes", name) is cls
