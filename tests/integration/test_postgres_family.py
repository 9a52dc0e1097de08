"""The PostgreSQL-protocol flavours (openGauss, GaussDB, KingbaseES, Oscar) on the real PostgreSQL
15 the suite starts: their profiles parsed by their own dbt adapters, connection validation, and
a real ``dbt build`` per client encoding (UTF8, GBK, GB18030) with Chinese identifiers and values
going Iceberg -> PostgreSQL -> dbt -> Iceberg.

What plain PostgreSQL does not prove about each engine: docs/engines-postgres-snowflake.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from pydantic import ValidationError

from floe_dagster.computes.gaussdb import GaussDBComputePlugin, GaussDBConfig
from floe_dagster.computes.kingbase import KingbaseComputePlugin
from floe_dagster.computes.opengauss import OpenGaussComputePlugin
from floe_dagster.computes.oscar import OscarComputePlugin
from floe_dagster.computes.postgres import dbt_env
from floe_dagster.computes.postgres_flavor import PostgresFlavorCompute
from floe_dagster.computes.postgres_iceberg import stage_catalog
from floe_dagster.manifest import load_manifest
from floe_dagster.plan.builders import build_catalog, build_compute
from floe_dagster.plugins import DbtProfileContext, NotSupportedError
from floe_dagster.plugins.registry import get_plugin_class
from floe_dagster.transforms.profiles import profile_context, write_profiles
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.server

CANARY = "canary-PgFam-5e2c71"
DBT = Path(sys.executable).parent / "dbt"
FLAVORS: list[tuple[type[PostgresFlavorCompute], str, int]] = [
    (OpenGaussComputePlugin, "openGauss", 5432),
    (GaussDBComputePlugin, "GaussDB", 8000),
    (KingbaseComputePlugin, "KingbaseES", 54321),
    (OscarComputePlugin, "Oscar", 2003),
]
# Chinese values: the first three are in GBK; U+20000 (CJK Extension B) is in GB18030 and UTF-8 only.
VALUES = ["北京烤鸭", "上海小笼包", "广州早茶"]
EXT_B = "\U00020000"


def credentials_class(adapter_type: str) -> Any:
    if adapter_type == "gaussdbdws":
        from dbt.adapters.gaussdbdws.connections import GaussDBDWSCredentials

        return GaussDBDWSCredentials
    from dbt.adapters.postgres.connections import PostgresCredentials

    return PostgresCredentials


def flavor_config(plugin: type[PostgresFlavorCompute], server: PostgresServer, **overrides: object) -> Any:
    raw: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "password": server.password,
        "dbname": server.database,
        "connect_timeout": 5,
    }
    return plugin.config_model.model_validate({**raw, **overrides})


# --- no server: registry, profiles parsed by each flavour's own dbt adapter ---------------------


@pytest.mark.parametrize(("plugin", "product", "port"), FLAVORS, ids=[f[1] for f in FLAVORS])
def test_flavor_profile_is_parsed_by_its_dbt_adapter(
    plugin: type[PostgresFlavorCompute], product: str, port: int, tmp_path: Path
) -> None:
    assert get_plugin_class("computes", plugin.type_name) is plugin
    config = plugin.config_model.model_validate(
        {"host": "db.internal", "user": "u", "password": CANARY, "dbname": "d", "client_encoding": "GB18030"}
    )
    context = DbtProfileContext("cn-prod", str(tmp_path / "m.yaml"), "dev", str(tmp_path), (), None)
    output = plugin().generate_dbt_profile(config, context)
    assert output["port"] == port and output["type"] == plugin.dbt_adapter_type
    assert CANARY not in yaml.safe_dump(output) and CANARY not in repr(config)
    env = dbt_env(config, "cn-prod")
    assert env["PGCLIENTENCODING"] == "GB18030"
    rendered = {**output, "password": env["FLOE_SECRET_CN_PROD_PASSWORD"]}
    adapter = rendered.pop("type")
    rendered.pop("threads")
    credentials_cls = credentials_class(adapter)
    credentials = credentials_cls.from_dict(credentials_cls.translate_aliases(rendered))
    assert (credentials.host, credentials.port, credentials.database) == ("db.internal", port, "d")
    assert (
        plugin()
        .get_required_dbt_packages()[0]
        .startswith("dbt-gaussdbdws" if adapter == "gaussdbdws" else "dbt-postgres")
    )


def test_gaussdb_requires_a_password_and_unknown_encodings_are_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        GaussDBConfig.model_validate({"host": "h", "user": "u", "dbname": "d"})
    assert "password is required" in str(info.value)
    with pytest.raises(ValidationError) as info:
        GaussDBConfig.model_validate(
            {"host": "h", "user": "u", "dbname": "d", "password": CANARY, "client_encoding": "BIG5"}
        )
    assert info.value.errors()[0]["loc"] == ("client_encoding",)
    assert "'UTF8', 'GBK' or 'GB18030'" in str(info.value) and CANARY not in str(info.value)


# --- the real server ------------------------------------------------------------------------------


@pytest.mark.parametrize(("plugin", "product", "port"), FLAVORS, ids=[f[1] for f in FLAVORS])
def test_flavor_validates_and_says_which_server_answered(
    plugin: type[PostgresFlavorCompute], product: str, port: int, postgres_server: PostgresServer
) -> None:
    result = plugin().validate_connection(flavor_config(plugin, postgres_server, client_encoding="GBK"))
    assert result.ok, result.message
    assert result.latency_ms > 0
    assert f"server PostgreSQL, not {product}" in result.message  # honest: a stand-in answered
    assert "client_encoding GBK" in result.message


def test_flavor_wrong_password_fails_without_the_secret(postgres_server: PostgresServer) -> None:
    result = KingbaseComputePlugin().validate_connection(
        flavor_config(KingbaseComputePlugin, postgres_server, password=CANARY)
    )
    assert result.status == "failed" and "password authentication failed" in result.message
    assert f"{postgres_server.host}:{postgres_server.port}" in result.message
    assert CANARY not in result.message


MANIFEST = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata: {{name: cn}}
catalogs:
  lakehouse:
    type: sql
    config: {{uri: "sqlite:///catalog.db", warehouse: warehouse}}
computes:
  approved: [cn]
  default: cn
  targets:
    cn:
      type: {flavor}
      config:
        host: 127.0.0.1
        port: {port}
        user: {user}
        password: ${{env:FLOE_TEST_CN_PASSWORD}}
        dbname: {dbname}
        schema: 分析
        client_encoding: {encoding}
        iceberg_io: true
        connect_timeout: 5
transforms:
  dbt_project: dbt
  catalog: lakehouse
"""


def write_project(root: Path, flavor: str, server: PostgresServer, dbname: str, encoding: str) -> Path:
    project = root / "dbt"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: cn\nversion: '1.0'\nconfig-version: 2\nprofile: cn\nmodel-paths: [models]\n"
        "models:\n  cn:\n    +materialized: table\n",
        encoding="utf-8",
    )
    (project / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: 原始\n    schema: 原始\n    tables: [{name: 订单}]\n",
        encoding="utf-8",
    )
    (project / "models" / "汇总.sql").write_text(
        'select "名称", "金额" * 2 as "双倍金额", \'中文备注\' as "备注"\n'
        "from {{ source('原始', '订单') }}\n",
        encoding="utf-8",
    )
    manifest = root / "manifest.yaml"
    manifest.write_text(
        MANIFEST.format(flavor=flavor, port=server.port, user=server.user, dbname=dbname, encoding=encoding),
        encoding="utf-8",
    )
    return manifest


def seed_source(catalog: Any, values: list[str]) -> None:
    catalog.ensure_namespace(("原始",))
    data = pa.table({"名称": pa.array(values), "金额": pa.array(range(1, len(values) + 1), pa.int64())})
    catalog.create_table(("原始", "订单"), schema=data.schema).append(data)


@pytest.mark.parametrize(
    ("encoding", "flavor"),
    [("UTF8", "opengauss"), ("GBK", "kingbase"), ("GB18030", "gaussdb")],
)
def test_chinese_identifiers_and_values_round_trip_through_dbt_and_iceberg(
    encoding: str,
    flavor: str,
    postgres_server: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOE_TEST_CN_PASSWORD", postgres_server.password)
    dbname = postgres_server.create_database()
    loaded = load_manifest(write_project(tmp_path, flavor, postgres_server, dbname, encoding))
    values = VALUES if encoding == "GBK" else [*VALUES, EXT_B]
    seed_source(build_catalog(loaded, "lakehouse"), values)
    plugin, config = build_compute(loaded, "cn")
    context = profile_context(loaded, "cn")
    profiles = write_profiles(loaded)

    plugin.prepare_dbt_run(config, context)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(plugin.dbt_env(config, "cn"), DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1")
    assert env["PGCLIENTENCODING"] == encoding
    run = subprocess.run(
        [str(DBT), "build", "--project-dir", str(loaded.dbt_project_dir), "--profiles-dir", str(profiles)],
        cwd=loaded.dbt_project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    plugin.finish_dbt_run(config, context)

    written = build_catalog(loaded, "lakehouse").load_table(("分析", "汇总")).scan().to_arrow()
    assert written.column_names == ["名称", "双倍金额", "备注"]
    rows = sorted(written.to_pylist(), key=lambda row: row["双倍金额"])
    assert [row["名称"] for row in rows] == values
    assert [row["双倍金额"] for row in rows] == [2 * i for i in range(1, len(values) + 1)]
    assert {row["备注"] for row in rows} == {"中文备注"}

    con = postgres_server.connect(dbname, client_encoding=encoding)
    try:
        with con.cursor() as cur:
            cur.execute("SHOW client_encoding")
            assert cur.fetchone() == (encoding,)
            cur.execute('select count(*) from "原始"."订单" where "名称" = %s', (VALUES[0],))
            assert cur.fetchone() == (1,)
            with pytest.raises(Exception) as info:  # the source copy is read-only
                cur.execute('delete from "原始"."订单"')
            assert "read-only copy of the Iceberg source lakehouse.原始.订单" in str(info.value)
    finally:
        con.close()


def test_a_character_outside_gbk_fails_clearly(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GBK cannot hold CJK Extension B: a clear error naming the table, the character and the fix."""
    monkeypatch.setenv("FLOE_TEST_CN_PASSWORD", postgres_server.password)
    dbname = postgres_server.create_database()
    loaded = load_manifest(write_project(tmp_path, "kingbase", postgres_server, dbname, "GBK"))
    catalog = build_catalog(loaded, "lakehouse")
    seed_source(catalog, [*VALUES, EXT_B])
    con = postgres_server.connect(dbname, client_encoding="GBK")
    try:
        with pytest.raises(NotSupportedError) as info:
            stage_catalog(con, catalog)
        message = str(info.value)
        assert "lakehouse.原始.订单" in message and "U+20000" in message and "client encoding GBK" in message
        assert "set the compute's client_encoding to GB18030 or UTF8" in message
    finally:
        con.close()
