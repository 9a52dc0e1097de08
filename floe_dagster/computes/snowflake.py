"""Snowflake compute: a dbt-snowflake target.

Profile keys are dbt-snowflake's
(https://docs.getdbt.com/docs/core/connect-data-platform/snowflake-setup): ``account``,
``user``, ``database``, ``warehouse``, ``schema``, ``role``, and per authenticator:

- ``snowflake`` (user / password): ``password``;
- ``snowflake_jwt`` (key pair): ``private_key`` (PEM or base64 DER) or ``private_key_path``,
  optional ``private_key_passphrase``; the profile leaves ``authenticator`` out, as the dbt docs'
  key-pair example does (the connector uses the key when one is given);
- ``oauth``: ``token`` (an access token), or a refresh ``token`` with ``oauth_client_id`` and
  ``oauth_client_secret``.

Plus ``query_tag``, ``client_session_keep_alive``, ``connect_retries``, ``connect_timeout``,
``retry_on_database_errors``, ``retry_all``, ``reuse_connections``, ``host`` / ``port`` /
``protocol`` (PrivateLink or a proxy), ``threads``. Secrets are written as
``{{ env_var('FLOE_SECRET_<COMPUTE>_<FIELD>') }}``.

``timeout_seconds`` is rejected: dbt-snowflake has no profile key for a statement timeout; set
``STATEMENT_TIMEOUT_IN_SECONDS`` on the warehouse or the user in Snowflake instead.

``validate_connection`` logs in through ``snowflake-connector-python`` with ``login_timeout``,
``network_timeout`` and ``socket_timeout`` (the HTTP read timeout; without it a login answered
late still succeeded) set to ``connect_timeout`` and runs ``SELECT 1``. For ``oauth`` with a client
id and secret it first exchanges the refresh token at the account's ``/oauth/token-request``
endpoint, as dbt-snowflake does.
"""

from __future__ import annotations

import base64
import warnings
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from floe_dagster.computes._warehouse import (
    WarehouseCompute,
    WarehouseConfig,
    drop_none,
    is_set,
    missing_credential,
    require,
)
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.compute import DbtProfileContext

__all__ = [
    "SnowflakeComputePlugin",
    "SnowflakeConfig",
]


class SnowflakeConfig(WarehouseConfig):
    account: str = Field(description="Account identifier, e.g. myorg-myaccount or xy12345.eu-west-1.")
    authenticator: Literal["snowflake", "snowflake_jwt", "oauth"] = Field(
        "snowflake",
        description="snowflake (password), snowflake_jwt (key pair) or oauth (token).",
    )
    user: str | None = Field(None, description="Login name (required except for oauth).")
    password: SecretStr | None = Field(None, description="Password (authenticator snowflake).")
    private_key: SecretStr | None = Field(
        None, description="Private key, PEM or base64 DER (authenticator snowflake_jwt)."
    )
    private_key_path: str | None = Field(None, description="Private key file (authenticator snowflake_jwt).")
    private_key_passphrase: SecretStr | None = Field(None, description="Passphrase of an encrypted key.")
    token: SecretStr | None = Field(
        None, description="OAuth access token, or refresh token with oauth_client_id/secret."
    )
    oauth_client_id: str | None = Field(None, description="OAuth client id (with a refresh token).")
    oauth_client_secret: SecretStr | None = Field(None, description="OAuth client secret.")
    database: str = Field(description="Database dbt builds models into.")
    warehouse: str = Field(description="Virtual warehouse that runs the queries.")
    schema_: str = Field(alias="schema", description="Schema dbt builds models into.")
    role: str | None = Field(None, description="Role to use.")
    query_tag: str | None = Field(None, description="QUERY_TAG set on every session.")
    client_session_keep_alive: bool = Field(False, description="Keep sessions alive past 4 hours.")
    reuse_connections: bool | None = Field(None, description="dbt-snowflake: reuse idle connections.")
    connect_retries: int = Field(1, ge=0, le=10, description="dbt's connection retries.")
    connect_timeout: int = Field(10, ge=1, le=300, description="Seconds to wait for a login.")
    retry_on_database_errors: bool = Field(False, description="dbt-snowflake: retry on database errors.")
    retry_all: bool = Field(False, description="dbt-snowflake: retry on any error.")
    host: str | None = Field(None, description="Host override (PrivateLink, proxies).")
    port: int | None = Field(None, ge=1, le=65535, description="Port override.")
    protocol: Literal["https", "http"] | None = Field(None, description="Protocol override.")
    threads: int = Field(1, ge=1, le=64, description="dbt's thread count for this target.")
    timeout_seconds: int | None = Field(None, ge=1, description="Not supported (see module doc).")

    @field_validator("timeout_seconds")
    @classmethod
    def _no_statement_timeout(cls, value: int | None) -> int | None:
        if value is not None:
            raise ValueError(
                "dbt-snowflake has no profile key for a statement timeout; set it in Snowflake instead"
                " (ALTER WAREHOUSE <wh> SET STATEMENT_TIMEOUT_IN_SECONDS = <n>, or on the user)"
            )
        return value

    @model_validator(mode="after")
    def _credentials_for_authenticator(self) -> SnowflakeConfig:
        method = self.authenticator
        if method != "oauth" and not self.user:
            raise missing_credential(
                "SnowflakeConfig", "user", f"snowflake authenticator '{method}' needs 'user' (the login name)"
            )
        if method == "snowflake" and not is_set(self.password):
            raise missing_credential(
                "SnowflakeConfig",
                "password",
                "snowflake authenticator 'snowflake' needs 'password': add password: ${env:NAME}"
                " (the variable holding it), or use authenticator snowflake_jwt / oauth",
            )
        if method == "snowflake_jwt" and is_set(self.private_key) == bool(self.private_key_path):
            raise missing_credential(
                "SnowflakeConfig",
                "private_key",
                "snowflake authenticator 'snowflake_jwt' needs exactly one of 'private_key'"
                " (from ${env:NAME}) and 'private_key_path'",
            )
        if method == "oauth":
            if not is_set(self.token):
                raise missing_credential(
                    "SnowflakeConfig",
                    "token",
                    "snowflake authenticator 'oauth' needs 'token': add token: ${env:NAME}",
                )
            if bool(self.oauth_client_id) != is_set(self.oauth_client_secret):
                raise ValueError(
                    "snowflake authenticator 'oauth' needs both 'oauth_client_id' and 'oauth_client_secret'"
                    " (a refresh token) or neither (an access token)"
                )
        wrong = {
            "snowflake": ["private_key", "private_key_path", "token", "oauth_client_secret"],
            "snowflake_jwt": ["password", "token", "oauth_client_secret"],
            "oauth": ["password", "private_key", "private_key_path"],
        }[method]
        given = [name for name in wrong if is_set(getattr(self, name))]
        if given:
            raise ValueError(
                f"snowflake authenticator '{method}' does not use {', '.join(repr(g) for g in given)}"
            )
        return self


class SnowflakeComputePlugin(WarehouseCompute):
    type_name: ClassVar[str] = "snowflake"
    config_model = SnowflakeConfig
    dbt_adapter_type = "snowflake"
    package = "dbt-snowflake>=1.11,<1.12"
    driver_package = "snowflake-connector-python"
    driver_module = "snowflake.connector"

    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        c: SnowflakeConfig = self._checked(config, "generate_dbt_profile")
        name = context.compute_name
        output = {
            "type": "snowflake",
            "account": c.account,
            "user": c.user,
            "authenticator": None if c.authenticator == "snowflake_jwt" else c.authenticator,
            "password": self._secret_ref(c, name, "password"),
            "private_key": self._secret_ref(c, name, "private_key"),
            "private_key_path": c.private_key_path,
            "private_key_passphrase": self._secret_ref(c, name, "private_key_passphrase"),
            "token": self._secret_ref(c, name, "token"),
            "oauth_client_id": c.oauth_client_id,
            "oauth_client_secret": self._secret_ref(c, name, "oauth_client_secret"),
            "database": c.database,
            "warehouse": c.warehouse,
            "schema": c.schema_,
            "role": c.role,
            "query_tag": c.query_tag,
            "client_session_keep_alive": c.client_session_keep_alive,
            "reuse_connections": c.reuse_connections,
            "connect_retries": c.connect_retries,
            "connect_timeout": c.connect_timeout,
            "retry_on_database_errors": c.retry_on_database_errors,
            "retry_all": c.retry_all,
            "host": c.host,
            "port": c.port,
            "protocol": c.protocol,
            "threads": c.threads,
        }
        return drop_none(output)

    def endpoint(self, config: SnowflakeConfig) -> str:
        host = config.host or f"{config.account}.snowflakecomputing.com"
        port = f":{config.port}" if config.port else ""
        where = f"account {config.account}, warehouse {config.warehouse}"
        return f"{config.protocol or 'https'}://{host}{port} ({where})"

    def socket_address(self, config: SnowflakeConfig) -> tuple[str, int]:
        host = config.host or f"{config.account}.snowflakecomputing.com"
        return host, config.port or (80 if config.protocol == "http" else 443)

    def _probe(self, config: SnowflakeConfig) -> str:
        connector = require("snowflake.connector", self.driver_package)
        kwargs: dict[str, Any] = {
            "account": config.account,
            "database": config.database,
            "schema": config.schema_,
            "warehouse": config.warehouse,
            "login_timeout": config.connect_timeout,
            "network_timeout": config.connect_timeout,
            # connector 4.x: without it a TLS handshake that never completes waits about 60 s
            "socket_timeout": config.connect_timeout,
            "application": "floe-validate",
            "client_session_keep_alive": False,
        }
        optional = {
            "user": config.user,
            "role": config.role,
            "host": config.host,
            "port": config.port,
            "protocol": config.protocol,
        }
        kwargs.update(drop_none(optional))
        if config.authenticator == "snowflake":
            assert config.password is not None
            kwargs["password"] = config.password.get_secret_value()
        elif config.authenticator == "snowflake_jwt":
            kwargs["authenticator"] = "SNOWFLAKE_JWT"
            kwargs["private_key"] = _private_key_der(config)
        else:
            kwargs["authenticator"] = "oauth"
            kwargs["token"] = self._access_token(config)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            con = connector.connect(**kwargs)
        try:
            cur = con.cursor()
            cur.execute("SELECT 1")
            cur.fetchall()
        finally:
            con.close()
        return "logged in and answered SELECT 1"

    def _access_token(self, config: SnowflakeConfig) -> str:
        assert config.token is not None
        if not config.oauth_client_id or config.oauth_client_secret is None:
            return config.token.get_secret_value()
        requests = require("requests", "requests")
        host = config.host or f"{config.account}.snowflakecomputing.com"
        port = f":{config.port}" if config.port else ""
        response = requests.post(
            f"{config.protocol or 'https'}://{host}{port}/oauth/token-request",
            data={
                "grant_type": "refresh_token",
                "refresh_token": config.token.get_secret_value(),
                "redirect_uri": "http://localhost:9999",
            },
            auth=(config.oauth_client_id, config.oauth_client_secret.get_secret_value()),
            timeout=config.connect_timeout,
        )
        if response.status_code != 200:
            raise PermissionError(f"the OAuth token request answered HTTP {response.status_code}")
        token = response.json().get("access_token")
        if not token:
            raise PermissionError("the OAuth token request answered without an access_token")
        return str(token)


def _private_key_der(config: SnowflakeConfig) -> bytes:
    """The configured private key as unencrypted PKCS#8 DER, what the connector takes."""
    from cryptography.hazmat.primitives import serialization

    if config.private_key is not None and config.private_key.get_secret_value():
        text = config.private_key.get_secret_value().strip()
        data = text.encode() if text.startswith("-----BEGIN") else b""
    else:
        assert config.private_key_path
        with open(config.private_key_path, "rb") as handle:
            data = handle.read()
    passphrase = (
        config.private_key_passphrase.get_secret_value().encode() if config.private_key_passphrase else None
    )
    try:
        if not data:
            data = base64.b64decode(text, validate=True)
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=passphrase)
        else:
            key = serialization.load_der_private_key(data, password=passphrase)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the private key could not be read ({type(exc).__name__})") from None
    return key.private_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
