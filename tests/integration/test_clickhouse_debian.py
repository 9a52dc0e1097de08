"""The ClickHouse compute against the only ClickHouse server the registries offer: Debian's 18.16.

What it proves and what it cannot (docs/engines.md): the compute's connection check over the
native protocol answers with latency; over HTTP, clickhouse-connect (and so dbt-clickhouse's http
driver) refuses this server at its first query; dbt-clickhouse 1.10.3 cannot run on it over either
driver (``EXISTS DATABASE``, which it sends before anything else, is a syntax error before
ClickHouse 20.x). These are recorded here as tests so that a newer server makes them fail loudly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from floe_dagster.computes.clickhouse import ClickHouseComputePlugin, ClickHouseConfig
from floe_dagster.plugins import DbtProfileContext
from tests.fixtures.clickhouse import ClickHouseServer

pytestmark = pytest.mark.server

DBT = Path(sys.executable).parent / "dbt"


def config(server: ClickHouseServer, driver: str, **overrides: Any) -> ClickHouseConfig:
    port = server.native_port if driver == "native" else server.http_port
    raw = {
        "driver": driver,
        "host": server.host,
        "port": port,
        "user": server.user,
        "password": server.password,
        "schema": "default",  # exists on a fresh server (dbt creates its own; validation does not)
        "connect_timeout": 5,
        **overrides,
    }
    return ClickHouseConfig.model_validate(raw)


def test_the_server_is_debians_old_clickhouse(clickhouse_server: ClickHouseServer) -> None:
    assert clickhouse_server.version.startswith("18.16")


def test_native_connection_check_answers_with_latency(clickhouse_server: ClickHouseServer) -> None:
    result = ClickHouseComputePlugin().validate_connection(config(clickhouse_server, "native"))
    assert result.ok, result.message
    assert result.latency_ms > 0


def test_native_connection_check_with_a_wrong_password_fails_without_it(
    clickhouse_server: ClickHouseServer,
) -> None:
    result = ClickHouseComputePlugin().validate_connection(
        config(clickhouse_server, "native", password="canary-wrong-pw")
    )
    assert not result.ok and "canary-wrong-pw" not in result.message


def test_http_driver_refuses_this_old_server_clearly(clickhouse_server: ClickHouseServer) -> None:
    result = ClickHouseComputePlugin().validate_connection(config(clickhouse_server, "http"))
    assert not result.ok
    assert "readonly" in result.message  # clickhouse-connect reads system.settings.readonly (newer servers)
    assert clickhouse_server.password not in result.message


@pytest.mark.e2e
@pytest.mark.parametrize("driver", ["native", "http"])
def test_dbt_clickhouse_cannot_run_on_18_16(
    clickhouse_server: ClickHouseServer, driver: str, tmp_path: Path
) -> None:
    plugin = ClickHouseComputePlugin()
    cfg = config(clickhouse_server, driver, schema="floe_ch")
    context = DbtProfileContext("ch", str(tmp_path / "m.yaml"), "dev", str(tmp_path), (), None)
    output = plugin.generate_dbt_profile(cfg, context)
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: chp\nversion: '1.0'\nprofile: chp\n")
    (root / "models" / "one.sql").write_text("select 1 as id")
    (root / "profiles.yml").write_text(yaml.safe_dump({"chp": {"target": "ch", "outputs": {"ch": output}}}))
    result = subprocess.run(
        [str(DBT), "debug", "--project-dir", str(root), "--profiles-dir", str(root), "--target", "ch"],
        cwd=root,
        env={**os.environ, **plugin.dbt_env(cfg, "ch"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    expected = "Failed to create floe_ch database" if driver == "native" else "Unknown identifier: readonly"
    assert expected in result.stdout, result.stdout[-2000:]
