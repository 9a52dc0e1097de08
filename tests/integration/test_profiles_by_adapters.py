"""Every compute's generated dbt profile, parsed by its dbt adapter's own credentials class.

No key list is copied here: dbt's ``Profile.from_raw_profiles`` loads the adapter named by the
output's ``type`` (installed by the ``dev`` extra), renders ``env_var()`` references with the
compute's ``dbt_env`` and builds its ``Credentials``; every key the plugin wrote must come back
with the value it wrote (an unknown key, a wrong type or a missing required field is dbt's error).
Then Redshift's IAM authentication: profiles for each credential mode, the credential chokepoint
(``plugins/aws.py``) validating the mix, a canary secret that never shows, and a connection check
for real: temporary credentials from moto's Redshift API, then a login to the real PostgreSQL the
suite starts (Redshift speaks its wire protocol).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from enum import Enum
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from pydantic import ValidationError

from floe_dagster.computes.postgres import RedshiftComputePlugin, RedshiftConfig
from floe_dagster.plugins import DbtProfileContext
from floe_dagster.plugins.compute import ComputePlugin
from floe_dagster.plugins.registry import available_types, get_plugin_class
from floe_dagster.plugins.telemetry import validate_compute
from tests.fixtures.dbt_profiles import dbt_credentials
from tests.fixtures.moto_server import MotoServer
from tests.fixtures.postgres import PostgresServer

CANARY = f"canary-{uuid.uuid4()}"
COMPUTE = "engine-prod"

# One config per compute type (several for Redshift's auth methods); secrets are the canary.
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "duckdb": ("duckdb", {"path": "{tmp}/db.duckdb", "threads": 2, "memory_limit": "1GB"}),
    "postgres": (
        "postgres",
        {
            "host": "pg.internal",
            "user": "dbt",
            "password": CANARY,
            "dbname": "analytics",
            "role": "transformer",
        },
    ),
    # the PostgreSQL-protocol flavours (docs/engines-postgres-snowflake.md): dbt-postgres, or
    # dbt-gaussdbdws for GaussDB
    **{
        flavour: (
            flavour,
            {
                "host": "pg.internal",
                "user": "dbt",
                "password": CANARY,
                "dbname": "analytics",
                "client_encoding": "GB18030",
            },
        )
        for flavour in ("opengauss", "gaussdb", "kingbase", "oscar")
    },
    "redshift-database": (
        "redshift",
        {"host": "rs.internal", "user": "dbt", "password": CANARY, "dbname": "dev", "query_group": "floe"},
    ),
    "redshift-iam-profile": (
        "redshift",
        {
            "method": "iam",
            "host": "rs.internal",
            "user": "dbt",
            "dbname": "dev",
            "cluster_id": "analytics-cluster",
            "region": "eu-west-1",
            "iam_profile": "analytics",
            "db_groups": ["transformers"],
            "autocreate": True,
        },
    ),
    "redshift-iam-keys": (
        "redshift",
        {
            "method": "iam",
            "host": "rs.internal",
            "user": "dbt",
            "dbname": "dev",
            "cluster_id": "analytics-cluster",
            "region": "eu-west-1",
            "access_key_id": "AKIAFLOETEST",
            "secret_access_key": CANARY,
        },
    ),
    "redshift-iam-role": (
        "redshift",
        {
            "method": "iam_role",
            "host": "rs.internal",
            "user": "dbt",
            "dbname": "dev",
            "cluster_id": "analytics-cluster",
            "region": "eu-west-1",
            "iam_profile": "analytics",
        },
    ),
    "spark": ("spark", {"method": "session", "schema": "analytics"}),
    "trino": (
        "trino",
        {
            "method": "ldap",
            "host": "t.internal",
            "user": "u",
            "password": CANARY,
            "catalog": "c",
            "schema": "s",
        },
    ),
    "snowflake": (
        "snowflake",
        {"account": "a-b", "user": "u", "password": CANARY, "database": "D", "warehouse": "W", "schema": "S"},
    ),
    "databricks": (
        "databricks",
        {
            "host": "dbc-1.cloud.databricks.com",
            "http_path": "/sql/1.0/warehouses/x",
            "schema": "s",
            "token": CANARY,
        },
    ),
    "bigquery": (
        "bigquery",
        {"method": "oauth-secrets", "project": "p", "dataset": "d", "token": CANARY},
    ),
    "clickhouse": ("clickhouse", {"host": "ch.internal", "user": "dbt", "password": CANARY, "schema": "a"}),
    "doris": ("doris", {"host": "fe.internal", "user": "dbt", "password": CANARY, "schema": "analytics"}),
    "starrocks": (
        "starrocks",
        {
            "host": "fe.internal",
            "user": "dbt",
            "password": CANARY,
            "schema": "analytics",
            "catalog": "iceberg",
        },
    ),
}
# Computes whose adapter cannot be installed beside the pins (docs/engines.md): no adapter here to
# parse their profile; the check of item 1 reports each missing, so installing one fails this test
# until it gets a case above.
ADAPTER_NOT_INSTALLABLE = {"tidb", "oceanbase"}


def context(tmp_path: Path) -> DbtProfileContext:
    return DbtProfileContext(
        COMPUTE, str(tmp_path / "manifest.yaml"), "dev", str(tmp_path / "state"), (), None
    )


def plugin_of(type_name: str) -> ComputePlugin:
    return cast(ComputePlugin, get_plugin_class("computes", type_name)())


def comparable(value: Any) -> Any:
    """A credentials attribute as the profile would spell it (enums by value, dataclasses as dicts)."""
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: comparable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, list | tuple):
        return [comparable(v) for v in value]
    return value


def test_every_registered_compute_has_a_case() -> None:
    from floe_dagster.plugins.dbt_packages import missing_packages

    covered = {type_name for type_name, _ in CASES.values()}
    assert covered | ADAPTER_NOT_INSTALLABLE == set(available_types("computes"))
    for type_name in ADAPTER_NOT_INSTALLABLE:
        assert missing_packages(plugin_of(type_name)), f"{type_name}'s adapter is installed now: add a case"


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_adapter_parses_the_generated_profile(case: str, tmp_path: Path) -> None:
    type_name, raw = CASES[case]
    plugin = plugin_of(type_name)
    raw = yaml.safe_load(yaml.safe_dump(raw).replace("{tmp}", str(tmp_path)))
    config = plugin.parse_config(raw)
    output = plugin.generate_dbt_profile(config, context(tmp_path))
    assert CANARY not in yaml.safe_dump(output), "a secret reached profiles.yml"
    env = plugin.dbt_env(config, COMPUTE)
    credentials = dbt_credentials(output, env)
    assert credentials.type == output["type"] == plugin.dbt_adapter_type
    # every key the plugin wrote is one the adapter took, with the value it wrote (after rendering)
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    set_invocation_context({**os.environ, **env})
    try:
        rendered = ProfileRenderer({}).render_data(yaml.safe_load(yaml.safe_dump(output)))
    finally:
        set_invocation_context(dict(os.environ))
    rendered.pop("type")
    rendered.pop("threads", None)
    canonical = type(credentials).translate_aliases(rendered)
    for key, value in canonical.items():
        assert hasattr(credentials, key), f"{type_name}: the adapter has no field '{key}'"
        got = comparable(getattr(credentials, key))
        if isinstance(value, dict) and isinstance(got, dict):
            assert {k: got.get(k) for k in value} == value, key
        else:
            assert got == value, f"{type_name}: '{key}' parsed as {got!r}, written as {value!r}"
    # secrets reached the adapter through the dbt process's environment, not through the file
    for name, secret in env.items():
        if secret == CANARY:
            assert name.startswith("FLOE_SECRET_" + COMPUTE.upper().replace("-", "_"))


# --- Redshift IAM ---------------------------------------------------------------------------------


def test_redshift_iam_profile_carries_no_password_and_dbt_sees_method_iam(tmp_path: Path) -> None:
    config = RedshiftComputePlugin().parse_config(CASES["redshift-iam-profile"][1])
    output = RedshiftComputePlugin().generate_dbt_profile(config, context(tmp_path))
    assert "password" not in output
    credentials = dbt_credentials(output, {})
    assert (credentials.method, credentials.cluster_id, credentials.region, credentials.iam_profile) == (
        "iam",
        "analytics-cluster",
        "eu-west-1",
        "analytics",
    )


def test_redshift_iam_static_keys_reach_dbt_only_through_its_environment(tmp_path: Path) -> None:
    plugin = RedshiftComputePlugin()
    config = plugin.parse_config(CASES["redshift-iam-keys"][1])
    output = plugin.generate_dbt_profile(config, context(tmp_path))
    env = plugin.dbt_env(config, COMPUTE)
    assert output["secret_access_key"] == "{{ env_var('FLOE_SECRET_ENGINE_PROD_SECRET_ACCESS_KEY') }}"
    assert env == {"FLOE_SECRET_ENGINE_PROD_SECRET_ACCESS_KEY": CANARY}
    credentials = dbt_credentials(output, env)
    assert (credentials.access_key_id, credentials.secret_access_key) == ("AKIAFLOETEST", CANARY)
    assert CANARY not in repr(config) and CANARY not in str(config.model_dump())


def test_redshift_iam_session_token_goes_to_the_aws_variables_of_the_dbt_process(tmp_path: Path) -> None:
    """dbt-redshift has no key for a session token: the keys go to AWS_* of that process only."""
    plugin = RedshiftComputePlugin()
    raw = {**CASES["redshift-iam-keys"][1], "session_token": CANARY + "-token"}
    config = plugin.parse_config(raw)
    output = plugin.generate_dbt_profile(config, context(tmp_path))
    assert "access_key_id" not in output and "secret_access_key" not in output
    assert plugin.dbt_env(config, COMPUTE) == {
        "AWS_ACCESS_KEY_ID": "AKIAFLOETEST",
        "AWS_SECRET_ACCESS_KEY": CANARY,
        "AWS_SESSION_TOKEN": CANARY + "-token",
    }
    dbt_credentials(output, plugin.dbt_env(config, COMPUTE))


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"method": "iam", "region": "eu-west-1"}, "cluster_id", "cluster's identifier"),
        ({"method": "iam", "cluster_id": "c"}, "region", "AWS region"),
        ({"method": "iam", "cluster_id": "c", "region": "eu-west-1", "password": CANARY}, "password", "IAM"),
        (
            {"method": "iam", "cluster_id": "c", "region": "eu-west-1", "access_key_id": "AKIAX"},
            "secret_access_key",
            "required when access_key_id is set",
        ),
        (
            {
                "method": "iam",
                "cluster_id": "c",
                "region": "eu-west-1",
                "iam_profile": "p",
                "access_key_id": "AKIAX",
                "secret_access_key": CANARY,
            },
            "iam_profile",
            "conflicts with access_key_id",
        ),
        (
            {"method": "iam", "cluster_id": "c", "region": "eu-west-1", "role_arn": "admin"},
            "role_arn",
            "role ARN",
        ),
        ({"method": "iam", "cluster_id": "c", "region": "moon-1"}, "region", "AWS region"),
        ({"password": CANARY, "cluster_id": "c"}, "cluster_id", "only applies to method iam"),
        ({"method": "database"}, "password", "needs a password"),
    ],
)
def test_redshift_iam_bad_input_names_the_field_without_the_secret(
    raw: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as info:
        RedshiftConfig.model_validate({"host": "h", "user": "u", "dbname": "d", **raw})
    error = info.value.errors()[0]
    assert error["loc"] == (field,), info.value
    assert words in error["msg"]
    assert CANARY not in str(info.value)


@pytest.fixture
def iam_cluster(moto_server: MotoServer, postgres_server: PostgresServer) -> dict[str, Any]:
    """A Redshift cluster on moto's API whose endpoint is the suite's PostgreSQL: moto hands out
    ``IAM:<user>`` with a random password, so that one role logs in with trust from loopback."""
    from psycopg2 import sql

    user = f"floe_iam_{uuid.uuid4().hex[:6]}"
    cluster = f"floe-{uuid.uuid4().hex[:8]}"
    moto_server.client("redshift").create_cluster(
        ClusterIdentifier=cluster,
        NodeType="dc2.large",
        MasterUsername="admin",
        MasterUserPassword="Admin-passw0rd",
        ClusterType="single-node",
    )
    hba = postgres_server.data_dir / "pg_hba.conf"
    hba.write_text(f'host all "IAM:{user}" 127.0.0.1/32 trust\n' + hba.read_text())
    con = postgres_server.connect("postgres")
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(f"IAM:{user}")))
            cur.execute("SELECT pg_reload_conf()")
    finally:
        con.close()
    return {
        "method": "iam",
        "host": postgres_server.host,
        "port": postgres_server.port,
        "dbname": postgres_server.database,
        "user": user,
        "cluster_id": cluster,
        "region": moto_server.region,
        "access_key_id": moto_server.access_key_id,
        "secret_access_key": CANARY,  # moto accepts any key: the canary must never show
        "aws_endpoint": moto_server.endpoint,
        "connect_timeout": 5,
    }


@pytest.mark.server
def test_redshift_iam_validation_logs_in_with_temporary_credentials(
    iam_cluster: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    plugin = RedshiftComputePlugin()
    result = validate_compute(plugin, plugin.parse_config(iam_cluster), "rs")
    assert result.ok, result.message
    assert result.latency_ms > 0 and "answered SELECT 1" in result.message
    assert CANARY not in result.message + caplog.text


@pytest.mark.server
def test_redshift_iam_validation_of_an_unknown_cluster_fails_clearly(
    iam_cluster: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    plugin = RedshiftComputePlugin()
    result = validate_compute(
        plugin, plugin.parse_config({**iam_cluster, "cluster_id": "no-such-cluster"}), "rs"
    )
    assert not result.ok
    assert "compute 'rs' (redshift)" in result.message and "no-such-cluster" in result.message
    assert "correlation id" in result.message
    assert CANARY not in result.message + caplog.text


@pytest.mark.server
def test_redshift_iam_role_is_assumed_right_before_dbt_starts(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``role_arn``: STS (moto's, through AWS_ENDPOINT_URL) is called by ``prepare_dbt_run`` through
    the chokepoint's ``aws_session``; the temporary keys go to the dbt process's AWS_* only."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    plugin = RedshiftComputePlugin()
    config = plugin.parse_config(
        {
            "method": "iam",
            "host": "rs.internal",
            "user": "dbt",
            "dbname": "dev",
            "cluster_id": "c",
            "region": moto_server.region,
            "access_key_id": moto_server.access_key_id,
            "secret_access_key": CANARY,
            "role_arn": "arn:aws:iam::123456789012:role/floe-transform",
        }
    )
    output = plugin.generate_dbt_profile(config, context(tmp_path))
    assert not {"access_key_id", "secret_access_key", "iam_profile"} & set(output)
    assert plugin.dbt_env(config, COMPUTE) == {}  # nothing assumed before the run
    env = plugin.prepare_dbt_run(config, context(tmp_path))
    assert set(env) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    assert env["AWS_SECRET_ACCESS_KEY"] != CANARY  # the role's keys, not the source keys
    dbt_credentials(output, env)
