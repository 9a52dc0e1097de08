"""The Snowflake compute for real, as far as an emulator allows: ``fakesnow``'s server (Snowflake's
REST protocol on DuckDB) behind a login check (tests/fixtures/fakesnow_server.py), reached by the
real ``snowflake-connector-python`` and the real dbt-snowflake.

What the emulator does not prove: docs/engines-postgres-snowflake.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from floe_dagster.computes.snowflake import SnowflakeComputePlugin, SnowflakeConfig
from floe_dagster.plugins import DbtProfileContext
from floe_dagster.plugins.telemetry import validate_compute
from tests.fixtures.fakesnow_server import ACCOUNT, USER, SnowflakeEmulator

pytestmark = pytest.mark.server

CANARY = "canary-Sn0w-4b7e21"
DBT = Path(sys.executable).parent / "dbt"


def sf_config(emulator: SnowflakeEmulator, **overrides: object) -> SnowflakeConfig:
    raw: dict[str, object] = {
        "account": ACCOUNT,
        "user": USER,
        "password": emulator.password,
        "database": "analytics",
        "warehouse": "transforming",
        "schema": "models",
        "host": emulator.host,
        "port": emulator.port,
        "protocol": "http",
        "connect_timeout": 3,
    }
    raw.update(overrides)
    return SnowflakeConfig.model_validate({k: v for k, v in raw.items() if v is not None})


def other_private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


# --- connection validation through the real connector -------------------------------------------


def test_password_login_validates_with_latency(snowflake_emulator: SnowflakeEmulator) -> None:
    result = SnowflakeComputePlugin().validate_connection(sf_config(snowflake_emulator))
    assert result.ok, result.message
    assert result.latency_ms > 0 and "logged in and answered SELECT 1" in result.message
    assert f"127.0.0.1:{snowflake_emulator.port}" in result.message


def test_wrong_password_fails_without_the_secret(snowflake_emulator: SnowflakeEmulator) -> None:
    config = sf_config(snowflake_emulator, password=CANARY)
    result = validate_compute(SnowflakeComputePlugin(), config, "sf")
    assert result.status == "failed"
    assert "Incorrect username or password was specified" in result.message
    assert CANARY not in result.message and CANARY not in repr(result) and CANARY not in repr(config)


def test_key_pair_login_sends_a_jwt_signed_by_the_key(
    snowflake_emulator: SnowflakeEmulator, rsa_key_pair: tuple[bytes, bytes], tmp_path: Path
) -> None:
    before = len(snowflake_emulator.logins)
    pem = rsa_key_pair[0].decode()
    plugin = SnowflakeComputePlugin()
    result = plugin.validate_connection(
        sf_config(snowflake_emulator, password=None, authenticator="snowflake_jwt", private_key=pem)
    )
    assert result.ok, result.message
    assert snowflake_emulator.logins[before]["authenticator"] == "SNOWFLAKE_JWT"
    # the same key from a file, encrypted with a passphrase
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(rsa_key_pair[0], password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(CANARY.encode()),
    )
    (tmp_path / "rsa_key.p8").write_bytes(encrypted)
    config = sf_config(
        snowflake_emulator,
        password=None,
        authenticator="snowflake_jwt",
        private_key_path=str(tmp_path / "rsa_key.p8"),
        private_key_passphrase=CANARY,
    )
    result = plugin.validate_connection(config)
    assert result.ok, result.message
    assert CANARY not in result.message and CANARY not in repr(config)


def test_key_pair_with_an_unregistered_key_is_refused(snowflake_emulator: SnowflakeEmulator) -> None:
    result = SnowflakeComputePlugin().validate_connection(
        sf_config(
            snowflake_emulator, password=None, authenticator="snowflake_jwt", private_key=other_private_key()
        )
    )
    assert result.status == "failed"
    assert "Incorrect username or password was specified" in result.message
    assert "PRIVATE KEY" not in result.message


def test_a_slow_login_times_out_after_connect_timeout(snowflake_emulator: SnowflakeEmulator) -> None:
    """The connector's login, network and socket read timeouts all come from connect_timeout (the
    socket timeout was missing: a login answered after 8 s used to succeed with connect_timeout 3)."""
    snowflake_emulator.login_delay_s = 8
    try:
        started = time.monotonic()
        config = sf_config(snowflake_emulator, connect_timeout=2)
        result = SnowflakeComputePlugin().validate_connection(config)
        elapsed = time.monotonic() - started
    finally:
        snowflake_emulator.login_delay_s = 0
    assert result.status == "failed"
    assert 1.5 < elapsed < 6, elapsed
    assert "timed out" in result.message.lower() and "connect_timeout=2s" in result.message


# --- a real dbt build through dbt-snowflake -----------------------------------------------------


def write_project(root: Path) -> Path:
    project = root / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: floe_sf\nversion: '1.0'\nconfig-version: 2\nprofile: floe_sf\nmodel-paths: [models]\n"
        "models:\n  floe_sf:\n    +materialized: table\n"
    )
    (project / "models" / "orders.sql").write_text(
        "select 1 as id, 'open' as status, 10.5 as amount\n"
        "union all select 2, 'closed', 4.5\nunion all select 3, 'closed', 5\n"
    )
    (project / "models" / "closed_orders.sql").write_text(
        "{{ config(materialized='view') }}\n"
        "select id, amount * 2 as doubled from {{ ref('orders') }} where status = 'closed'\n"
    )
    (project / "models" / "schema.yml").write_text(
        "version: 2\nmodels:\n  - name: closed_orders\n    columns:\n"
        "      - name: id\n        data_tests: [not_null, unique]\n"
    )
    return project


def run_dbt(project: Path, profiles: Path, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNOWFLAKE")}
    env.update(env_extra, DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1")
    return subprocess.run(
        [str(DBT), "build", "--project-dir", str(project), "--profiles-dir", str(profiles), "--target", "sf"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_dbt_build_runs_on_the_emulator_with_a_key_pair(
    snowflake_emulator: SnowflakeEmulator, rsa_key_pair: tuple[bytes, bytes], tmp_path: Path
) -> None:
    before = len(snowflake_emulator.logins)
    config = sf_config(
        snowflake_emulator,
        password=None,
        authenticator="snowflake_jwt",
        private_key=rsa_key_pair[0].decode(),
        query_tag="floe-test",
    )
    plugin = SnowflakeComputePlugin()
    assert plugin.validate_connection(config).ok
    context = DbtProfileContext("sf", str(tmp_path / "manifest.yaml"), "dev", str(tmp_path), (), None)
    output = plugin.generate_dbt_profile(config, context)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    profile = {"floe_sf": {"target": "sf", "outputs": {"sf": output}}}
    (profiles / "profiles.yml").write_text(yaml.safe_dump(profile))
    assert "PRIVATE KEY" not in (profiles / "profiles.yml").read_text()
    project = write_project(tmp_path)

    run = run_dbt(project, profiles, plugin.dbt_env(config, "sf"))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "PASS=4" in run.stdout, run.stdout[-2000:]
    dbt_logins = snowflake_emulator.logins[before + 1 :]
    assert dbt_logins and {login["authenticator"] for login in dbt_logins} == {"SNOWFLAKE_JWT"}
    assert all(login["session_parameters"].get("QUERY_TAG") == "floe-test" for login in dbt_logins)

    con: Any = snowflake_emulator.connect(database="analytics", schema="models")
    try:
        cur = con.cursor()
        cur.execute("select id, doubled from analytics.models.closed_orders order by id")
        assert [(int(i), float(d)) for i, d in cur.fetchall()] == [(2, 9.0), (3, 10.0)]
        cur.execute(
            "select table_name, table_type from analytics.information_schema.tables"
            " where table_schema = 'MODELS' order by table_name"
        )
        assert cur.fetchall() == [("ORDERS", "BASE TABLE")]  # fakesnow lists views only in .views
        cur.execute("select table_name from analytics.information_schema.views where table_schema = 'MODELS'")
        assert cur.fetchall() == [("CLOSED_ORDERS",)]
    finally:
        con.close()
