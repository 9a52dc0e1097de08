"""The MySQL-protocol computes (Doris, StarRocks, TiDB, OceanBase) against a real MariaDB.

MariaDB (Debian's mariadb-server, tests/fixtures/mariadb.py) speaks the protocol all four engines
speak, so their connection checks run for real here: latency, the server's version, a refused
port, a wrong password (a canary that never shows), client character sets. A real ``dbt build``
runs through every adapter that works against MariaDB: dbt-doris (tables, a view, refs, Chinese
values in utf8mb4). dbt-starrocks does not (its catalog-qualified SQL is StarRocks-only; shown
below), dbt-tidb and dbt-oceanbase are not installable beside the pins and are reported missing.
What MariaDB does not prove about the engines themselves: docs/engines.md.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from floe_dagster.computes._mysql import MySqlProtocolCompute
from floe_dagster.plugins import DbtProfileContext
from floe_dagster.plugins.registry import get_plugin_class
from floe_dagster.plugins.telemetry import validate_compute
from tests.fixtures.dbt_profiles import dbt_credentials
from tests.fixtures.mariadb import MariaDBServer

pytestmark = pytest.mark.server

CANARY = f"canary-{uuid.uuid4()}"
ENGINES = ["doris", "starrocks", "tidb", "oceanbase"]
DBT = Path(sys.executable).parent / "dbt"


def plugin_of(type_name: str) -> MySqlProtocolCompute:
    return cast(MySqlProtocolCompute, get_plugin_class("computes", type_name)())


def config_for(server: MariaDBServer, type_name: str, **overrides: Any) -> Any:
    raw = {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "password": server.password,
        "schema": "floe_mfam",
        "connect_timeout": 5,
        **overrides,
    }
    return plugin_of(type_name).parse_config(raw)


def context(tmp_path: Path, name: str = "mfam") -> DbtProfileContext:
    return DbtProfileContext(name, str(tmp_path / "manifest.yaml"), "dev", str(tmp_path), (), None)


@pytest.mark.parametrize("type_name", ENGINES)
def test_connection_check_answers_with_latency_and_version(
    mariadb_server: MariaDBServer, type_name: str
) -> None:
    result = plugin_of(type_name).validate_connection(config_for(mariadb_server, type_name))
    assert result.ok, result.message
    assert result.latency_ms > 0
    assert f"answered SELECT VERSION(): {mariadb_server.version}" in result.message
    assert f"{mariadb_server.host}:{mariadb_server.port}" in result.message


@pytest.mark.parametrize("charset", ["utf8mb4", "gbk"])
def test_connection_check_with_a_chinese_client_charset(mariadb_server: MariaDBServer, charset: str) -> None:
    result = plugin_of("doris").validate_connection(config_for(mariadb_server, "doris", charset=charset))
    assert result.ok, result.message


def test_a_charset_the_server_lacks_is_a_clear_failure(mariadb_server: MariaDBServer) -> None:
    """MariaDB 10.11 has no gb18030 (MySQL 8.0 and the engines do): the check says so."""
    result = plugin_of("doris").validate_connection(config_for(mariadb_server, "doris", charset="gb18030"))
    assert not result.ok
    assert "Unknown character set: 'gb18030'" in result.message


@pytest.mark.parametrize("type_name", ENGINES)
def test_wrong_password_fails_without_the_secret(
    mariadb_server: MariaDBServer, type_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    plugin = plugin_of(type_name)
    result = plugin.validate_connection(config_for(mariadb_server, type_name, password=CANARY))
    assert not result.ok
    assert "Access denied" in result.message and "correlation id" in result.message
    assert CANARY not in result.message + caplog.text


def test_refused_port_fails_at_once(mariadb_server: MariaDBServer) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = plugin_of("starrocks").validate_connection(config_for(mariadb_server, "starrocks", port=port))
    assert not result.ok and f"127.0.0.1:{port}" in result.message
    assert "Connection refused" in result.message
    assert result.latency_ms < 2000


@pytest.mark.parametrize(("type_name", "adapter"), [("tidb", "dbt-tidb"), ("oceanbase", "dbt-oceanbase")])
def test_health_of_an_engine_whose_adapter_cannot_install_names_it(
    mariadb_server: MariaDBServer, type_name: str, adapter: str
) -> None:
    """The server answers (above), but dbt could not run: the health check says what is missing."""
    result = validate_compute(plugin_of(type_name), config_for(mariadb_server, type_name), "c")
    assert not result.ok
    assert f"the dbt adapter '{adapter}" in result.message and "pip install" in result.message


def test_unsupported_engines_are_refused_with_the_reason() -> None:
    from floe_dagster.core.errors import PluginNotFoundError

    for name, words in [("druid", "no dbt adapter"), ("dameng", "dbt-core==1.4.5"), ("tdsql", "dbt-tdsql")]:
        with pytest.raises(PluginNotFoundError, match="not supported") as info:
            get_plugin_class("computes", name)
        assert words in str(info.value)


@pytest.mark.parametrize("type_name", ["doris", "starrocks"])
def test_profile_is_parsed_by_the_installed_adapter(
    mariadb_server: MariaDBServer, type_name: str, tmp_path: Path
) -> None:
    plugin = plugin_of(type_name)
    config = config_for(mariadb_server, type_name, password=CANARY)
    output = plugin.generate_dbt_profile(config, context(tmp_path))
    assert CANARY not in yaml.safe_dump(output)
    credentials = dbt_credentials(output, plugin.dbt_env(config, "mfam"))
    assert (credentials.host, credentials.port, credentials.username) == (
        mariadb_server.host,
        mariadb_server.port,
        mariadb_server.user,
    )
    assert credentials.password == CANARY and credentials.schema == "floe_mfam"


MODELS = {
    "orders.sql": (
        "{{ config(materialized='table') }}\n"
        "select 1 as id, '北京' as city, 10.5 as amount union all select 2, '上海', 20.0"
        " union all select 3, '北京', 5.0"
    ),
    "orders_view.sql": "{{ config(materialized='view') }}\nselect id, city, amount from {{ ref('orders') }}",
    "revenue_by_city.sql": (
        "{{ config(materialized='table') }}\n"
        "select city, sum(amount) as revenue, count(*) as n from {{ ref('orders_view') }} group by city"
    ),
}


def write_project(root: Path, output: dict[str, Any]) -> None:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: mfam\nversion: '1.0'\nprofile: mfam\n")
    for name, sql in MODELS.items():
        (root / "models" / name).write_text(sql, encoding="utf-8")
    (root / "profiles.yml").write_text(
        yaml.safe_dump({"mfam": {"target": "mfam", "outputs": {"mfam": output}}}, allow_unicode=True)
    )


def dbt_build(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DBT), "build", "--project-dir", str(root), "--profiles-dir", str(root), "--target", "mfam"],
        cwd=root,
        env={**os.environ, **env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.e2e
def test_dbt_build_through_dbt_doris_on_mariadb(mariadb_server: MariaDBServer, tmp_path: Path) -> None:
    plugin = plugin_of("doris")
    schema = f"floe_doris_{uuid.uuid4().hex[:6]}"
    config = config_for(mariadb_server, "doris", schema=schema)
    assert validate_compute(plugin, config, "mfam").ok
    write_project(tmp_path / "project", plugin.generate_dbt_profile(config, context(tmp_path)))
    result = dbt_build(tmp_path / "project", plugin.dbt_env(config, "mfam"))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "PASS=3" in result.stdout
    assert mariadb_server.password not in result.stdout + result.stderr
    con = mariadb_server.connect(schema)
    try:
        cur = con.cursor()
        cur.execute("SELECT city, revenue, n FROM revenue_by_city ORDER BY city")
        rows = [(city, float(revenue), n) for city, revenue, n in cur.fetchall()]
        cur.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = %s"
            " ORDER BY table_name",
            (schema,),
        )
        kinds = cur.fetchall()
    finally:
        con.close()
    assert sorted(rows) == sorted([("北京", 15.5, 2), ("上海", 20.0, 1)])
    assert kinds == [("orders", "BASE TABLE"), ("orders_view", "VIEW"), ("revenue_by_city", "BASE TABLE")]


@pytest.mark.e2e
def test_dbt_starrocks_cannot_build_on_mariadb(mariadb_server: MariaDBServer, tmp_path: Path) -> None:
    """Recorded, not hidden: dbt-starrocks qualifies schemas with its catalog, MariaDB refuses it."""
    plugin = plugin_of("starrocks")
    config = config_for(mariadb_server, "starrocks", schema=f"floe_sr_{uuid.uuid4().hex[:6]}", version="3.3")
    write_project(tmp_path / "project", plugin.generate_dbt_profile(config, context(tmp_path)))
    result = dbt_build(tmp_path / "project", plugin.dbt_env(config, "mfam"))
    assert result.returncode != 0
    assert "default_catalog" in result.stdout or "syntax" in result.stdout


def test_floe_plugins_says_what_each_engine_can_do_and_what_is_not_supported(tmp_path: Path) -> None:
    from tests.helpers import run_floe

    result = run_floe(["plugins"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    computes = next(line for line in lines if line.startswith("computes: ")).split(": ", 1)[1].split(", ")
    assert {"doris", "starrocks", "tidb", "oceanbase"} <= set(computes)
    assert not {"druid", "dameng", "gbase8s", "tdsql"} & set(computes)  # no plugin claims them
    notes = {line.split(":", 1)[0].strip(): line.split(":", 1)[1] for line in lines if line.startswith("  ")}
    assert "dbt-core<1.7" in notes["tidb"]
    for name in ("druid", "dameng", "gbase8s", "tdsql"):
        assert notes[name].strip().startswith("not supported:")
