"""PostgreSQL (and Redshift over the same wire protocol) against a real PostgreSQL 15 server.

The compute contract, bad input, a real ``dbt build`` through dbt-postgres, and the SQL catalog
contract with PostgreSQL as the catalog database.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from floe_dagster.catalogs.sql import SqlCatalogConfig, SqlCatalogPlugin
from floe_dagster.computes.postgres import (
    PostgresComputePlugin,
    PostgresConfig,
    RedshiftComputePlugin,
    RedshiftConfig,
    dbt_env,
    secret_env_name,
)
from floe_dagster.plugins import ConfigurationError, DbtProfileContext
from floe_dagster.plugins.telemetry import validate_compute
from tests.contract.contracts import CatalogContract, ComputeContract
from tests.fixtures.postgres import PostgresServer, closed_port

pytestmark = pytest.mark.server

CANARY = "canary-S3cr3t-7f1d9e"
DBT = Path(sys.executable).parent / "dbt"


def context(tmp_path: Path, compute_name: str = "c") -> DbtProfileContext:
    return DbtProfileContext(compute_name, str(tmp_path / "manifest.yaml"), "dev", str(tmp_path), (), None)


def postgres_config(server: PostgresServer, **overrides: object) -> PostgresConfig:
    raw: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "password": server.password,
        "dbname": server.database,
        "connect_timeout": 5,
    }
    return PostgresConfig.model_validate({**raw, **overrides})


def redshift_config(server: PostgresServer, **overrides: object) -> RedshiftConfig:
    raw: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "password": server.password,
        "dbname": server.database,
        "connect_timeout": 5,
    }
    return RedshiftConfig.model_validate({**raw, **overrides})


def credential_keys(credentials_class: type) -> set[str]:
    """The keys a dbt adapter's profile output accepts: its credentials fields and their aliases."""
    keys = {f.name for f in dataclasses.fields(credentials_class)}
    return keys | set(credentials_class._ALIASES) | {"type", "threads"}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never answers (a hung server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


# --- the contract ------------------------------------------------------------------------------


class TestPostgresCompute(ComputeContract):
    @pytest.fixture
    def compute(self) -> PostgresComputePlugin:
        return PostgresComputePlugin()

    @pytest.fixture
    def compute_config(self, postgres_server: PostgresServer) -> PostgresConfig:
        return postgres_config(postgres_server)


class TestRedshiftComputeOverTheWireProtocol(ComputeContract):
    """Redshift's plugin validated against PostgreSQL, which speaks the same protocol."""

    @pytest.fixture
    def compute(self) -> RedshiftComputePlugin:
        return RedshiftComputePlugin()

    @pytest.fixture
    def compute_config(self, postgres_server: PostgresServer) -> RedshiftConfig:
        return redshift_config(postgres_server)


# --- profiles: only keys the adapters know, never the secret ------------------------------------


def test_postgres_profile_keys_are_dbt_postgres_credentials(tmp_path: Path) -> None:
    from dbt.adapters.postgres.connections import PostgresCredentials

    config = PostgresConfig.model_validate(
        {
            "host": "db.internal",
            "user": "u",
            "password": CANARY,
            "dbname": "d",
            "schema": "analytics",
            "sslmode": "require",
            "role": "transformer",
            "keepalives_idle": 30,
            "application_name": "floe",
            "timeout_seconds": 60,
        }
    )
    output = PostgresComputePlugin().generate_dbt_profile(config, context(tmp_path, "pg-prod"))
    assert set(output) <= credential_keys(PostgresCredentials), set(output) - credential_keys(
        PostgresCredentials
    )
    assert output["schema"] == "analytics" and output["sslmode"] == "require"
    assert output["password"] == "{{ env_var('FLOE_SECRET_PG_PROD_PASSWORD') }}"
    assert CANARY not in yaml.safe_dump(output)
    assert dbt_env(config, "pg-prod") == {
        "FLOE_SECRET_PG_PROD_PASSWORD": CANARY,
        "PGOPTIONS": "-c statement_timeout=60s",
    }


def test_redshift_profile_keys_are_dbt_redshift_credentials(tmp_path: Path) -> None:
    from dbt.adapters.redshift.connections import RedshiftCredentials

    config = RedshiftConfig.model_validate(
        {
            "host": "cluster.abc.eu-west-1.redshift.amazonaws.com",
            "user": "u",
            "password": CANARY,
            "dbname": "dev",
            "schema": "analytics",
            "sslmode": "verify-full",
            "role": "transformer",
            "region": "eu-west-1",
            "query_group": "floe",
            "ra3_node": True,
        }
    )
    output = RedshiftComputePlugin().generate_dbt_profile(config, context(tmp_path, "rs"))
    assert set(output) <= credential_keys(RedshiftCredentials), set(output) - credential_keys(
        RedshiftCredentials
    )
    assert output["type"] == "redshift" and output["method"] == "database" and output["port"] == 5439
    assert output["password"] == "{{ env_var('FLOE_SECRET_RS_PASSWORD') }}"
    assert CANARY not in yaml.safe_dump(output)
    assert dbt_env(config, "rs") == {"FLOE_SECRET_RS_PASSWORD": CANARY}


def test_redshift_profile_is_accepted_by_dbt_redshift(tmp_path: Path) -> None:
    """dbt-redshift's own credentials class parses the generated output (after env_var rendering)."""
    from dbt.adapters.redshift.connections import RedshiftCredentials

    config = RedshiftConfig.model_validate({"host": "h", "user": "u", "password": CANARY, "dbname": "dev"})
    output = RedshiftComputePlugin().generate_dbt_profile(config, context(tmp_path))
    rendered = {**output, "password": dbt_env(config, "c")[secret_env_name("c")]}
    rendered.pop("type"), rendered.pop("threads")
    credentials = RedshiftCredentials.from_dict(RedshiftCredentials.translate_aliases(rendered))
    assert (credentials.database, credentials.schema, credentials.password) == ("dev", "public", CANARY)


def test_postgres_without_password_leaves_it_to_libpq(tmp_path: Path) -> None:
    config = PostgresConfig.model_validate({"host": "h", "user": "u", "dbname": "d"})
    assert PostgresComputePlugin().generate_dbt_profile(config, context(tmp_path))["password"] == ""
    assert dbt_env(config, "c") == {}


def test_secret_is_absent_from_config_repr_and_str() -> None:
    for config in (
        PostgresConfig.model_validate({"host": "h", "user": "u", "dbname": "d", "password": CANARY}),
        RedshiftConfig.model_validate({"host": "h", "user": "u", "dbname": "d", "password": CANARY}),
    ):
        assert CANARY not in repr(config) and CANARY not in str(config)
        assert CANARY not in config.model_dump_json()


# --- bad input ---------------------------------------------------------------------------------


def test_wrong_password_fails_without_the_secret(postgres_server: PostgresServer) -> None:
    for plugin, config in (
        (PostgresComputePlugin(), postgres_config(postgres_server, password=CANARY)),
        (RedshiftComputePlugin(), redshift_config(postgres_server, password=CANARY)),
    ):
        result = plugin.validate_connection(config)
        assert result.status == "failed"
        assert "password authentication failed" in result.message
        assert f"{postgres_server.host}:{postgres_server.port}" in result.message
        assert CANARY not in result.message and CANARY not in repr(result)
        assert CANARY not in repr(config) and CANARY not in str(config)


def test_missing_password_fails_with_a_clear_message(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("PGPASSWORD", "PGPASSFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent/.pgpass")  # no ~/.pgpass can answer for it
    result = validate_compute(
        PostgresComputePlugin(), postgres_config(postgres_server, password=None), "pg_prod"
    )
    assert result.status == "failed"
    where = f"{postgres_server.user}@{postgres_server.host}:{postgres_server.port}/{postgres_server.database}"
    assert result.message.startswith(f"compute 'pg_prod' (postgres): postgres {where}: "), result.message
    assert "fe_sendauth: no password supplied; set the compute's config.password (password: ${env:NAME})" in (
        result.message
    )
    assert "PGPASSWORD" in result.message  # the other way to give it
    assert postgres_server.password not in result.message and postgres_server.password not in repr(result)


def test_unreachable_host_fails_quickly() -> None:
    port = closed_port()
    config = PostgresConfig.model_validate(
        {"host": "127.0.0.1", "port": port, "user": "u", "dbname": "d", "password": CANARY}
    )
    started = time.monotonic()
    result = PostgresComputePlugin().validate_connection(config)
    assert time.monotonic() - started < 3
    assert result.status == "failed"
    assert f"127.0.0.1:{port}" in result.message and "refused" in result.message
    assert CANARY not in result.message


def test_connect_timeout_is_honoured(silent_port: int) -> None:
    """A server that accepts TCP but never answers: the failure comes after connect_timeout.

    libpq treats any connect_timeout below 2 as 2 seconds.
    """
    for plugin, model in (
        (PostgresComputePlugin(), PostgresConfig),
        (RedshiftComputePlugin(), RedshiftConfig),
    ):
        config = model.model_validate(
            {
                "host": "127.0.0.1",
                "port": silent_port,
                "user": "u",
                "dbname": "d",
                "password": CANARY,
                "connect_timeout": 2,
                "sslmode": "disable",
            }
        )
        started = time.monotonic()
        result = plugin.validate_connection(config)
        elapsed = time.monotonic() - started
        assert result.status == "failed"
        assert 1.5 < elapsed < 6, elapsed
        assert "timeout expired" in result.message and "connect_timeout=2s" in result.message
        assert f"127.0.0.1:{silent_port}" in result.message and CANARY not in result.message


def test_redshift_requires_a_password() -> None:
    with pytest.raises(ValidationError) as info:
        RedshiftConfig.model_validate({"host": "h", "user": "u", "dbname": "d"})
    errors = info.value.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [(("password",), "missing")]


def test_redshift_rejects_a_statement_timeout_it_cannot_write() -> None:
    with pytest.raises(ValidationError) as info:
        RedshiftConfig.model_validate(
            {"host": "h", "user": "u", "dbname": "d", "password": CANARY, "timeout_seconds": 30}
        )
    assert info.value.errors()[0]["loc"] == ("timeout_seconds",)
    assert "statement_timeout" in str(info.value) and CANARY not in str(info.value)


def test_unknown_keys_and_bad_values_are_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        PostgresConfig.model_validate(
            {"host": "h", "user": "u", "dbname": "d", "options": "-c x=1", "sslmode": "sometimes"}
        )
    locations = {e["loc"] for e in info.value.errors()}
    assert locations == {("options",), ("sslmode",)}


@pytest.mark.parametrize("plugin", [PostgresComputePlugin(), RedshiftComputePlugin()])
def test_unknown_workload_size_lists_presets(plugin: PostgresComputePlugin) -> None:
    with pytest.raises(ConfigurationError) as info:
        plugin.get_resource_requirements("xl")
    message = str(info.value)
    assert "'xl'" in message and all(size in message for size in ("small", "medium", "large"))
    assert info.value.provider == plugin.type_name


def test_statement_timeout_applies_to_validation(postgres_server: PostgresServer) -> None:
    result = PostgresComputePlugin().validate_connection(postgres_config(postgres_server, timeout_seconds=7))
    assert result.ok, result.message


# --- a real dbt build on PostgreSQL ------------------------------------------------------------


def write_dbt_project(root: Path) -> Path:
    project = root / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: floe_pg\nversion: '1.0'\nconfig-version: 2\nprofile: floe_pg\n"
        "model-paths: [models]\nmodels:\n  floe_pg:\n    +materialized: table\n"
    )
    (project / "models" / "first.sql").write_text(
        "select 1 as id, current_setting('statement_timeout') as statement_timeout\n"
    )
    (project / "models" / "second.sql").write_text("select id * 10 as id from {{ ref('first') }}\n")
    (project / "models" / "schema.yml").write_text(
        "version: 2\nmodels:\n  - name: second\n    columns:\n"
        "      - name: id\n        data_tests: [not_null, unique]\n"
    )
    return project


def test_dbt_build_runs_on_postgres(postgres_server: PostgresServer, tmp_path: Path) -> None:
    database = postgres_server.create_database()
    config = postgres_config(postgres_server, dbname=database, schema="floe_models", timeout_seconds=45)
    plugin = PostgresComputePlugin()
    assert plugin.validate_connection(config).ok
    output = plugin.generate_dbt_profile(config, context(tmp_path / "state", "pg"))
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(
        yaml.safe_dump({"floe_pg": {"target": "pg", "outputs": {"pg": output}}})
    )
    assert postgres_server.password not in (profiles / "profiles.yml").read_text()
    project = write_dbt_project(tmp_path)

    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(dbt_env(config, "pg"), DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1")
    run = subprocess.run(
        [str(DBT), "build", "--project-dir", str(project), "--profiles-dir", str(profiles), "--target", "pg"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "PASS=4" in run.stdout, run.stdout[-2000:]
    logs = (project / "logs" / "dbt.log").read_text()
    assert postgres_server.password not in run.stdout + run.stderr + logs
    for artifact in (project / "target").rglob("*"):  # manifest.json, partial_parse.msgpack, ...
        if artifact.is_file():
            assert postgres_server.password.encode() not in artifact.read_bytes(), artifact

    con = postgres_server.connect(database)
    try:
        with con.cursor() as cur:
            cur.execute(
                "select table_name from information_schema.tables"
                " where table_schema = 'floe_models' order by table_name"
            )
            assert [r[0] for r in cur.fetchall()] == ["first", "second"]
            cur.execute("select id, statement_timeout from floe_models.first")
            assert cur.fetchall() == [(1, "45s")]  # dbt's connections ran under timeout_seconds
            cur.execute("select id from floe_models.second")
            assert cur.fetchall() == [(10,)]
    finally:
        con.close()


# --- dbt-redshift cannot run against PostgreSQL (why there is no Redshift dbt run here) --------


def test_dbt_redshift_driver_is_refused_by_postgresql_and_why(postgres_server: PostgresServer) -> None:
    """dbt-redshift connects through redshift_connector, which always sends Redshift-only start-up
    parameters (``client_protocol_version``, ``driver_version``, ``os_version`` ...); PostgreSQL
    refuses any start-up parameter it does not know, so no dbt-redshift run can target it. (Its
    SCRAM client also misreads PostgreSQL's SASL mechanism list, so this role uses MD5, Redshift's
    own password scheme, to get that far.) What is tested for Redshift instead: the profile is
    parsed by dbt-redshift's own credentials class, and floe's validation (psycopg2 over the wire
    protocol) runs against this server. If this test fails, a real dbt-redshift run has become
    possible here: add it."""
    import redshift_connector

    password = "rs-" + CANARY
    postgres_server.create_md5_user("rs_probe", password)
    with pytest.raises(redshift_connector.ProgrammingError) as info:
        redshift_connector.connect(
            host=postgres_server.host,
            port=postgres_server.port,
            user="rs_probe",
            password=password,
            database="postgres",
            ssl=False,
            timeout=5,
        )
    assert 'unrecognized configuration parameter "client_protocol_version"' in str(info.value)
    config = redshift_config(
        postgres_server, user="rs_probe", password=password, dbname="postgres", sslmode="disable"
    )
    assert RedshiftComputePlugin().validate_connection(config).ok  # the same role over psycopg2


# --- the SQL catalog on PostgreSQL -------------------------------------------------------------


def postgres_catalog(server: PostgresServer, tmp_path: Path, password: str | None = None) -> SqlCatalogPlugin:
    config = SqlCatalogConfig.model_validate(
        {
            "uri": server.sqlalchemy_uri(server.create_database()),
            "warehouse": str(tmp_path / "warehouse"),
            "password": password or server.password,
        }
    )
    return SqlCatalogPlugin("contract", config)


class TestSqlCatalogOnPostgres(CatalogContract):
    nested_namespaces = True
    vends_credentials = False

    @pytest.fixture
    def catalog(self, postgres_server: PostgresServer, tmp_path: Path) -> SqlCatalogPlugin:
        return postgres_catalog(postgres_server, tmp_path)


def test_sql_catalog_uri_with_password_is_rejected(postgres_server: PostgresServer) -> None:
    uri = f"postgresql+psycopg2://floe:{CANARY}@127.0.0.1:{postgres_server.port}/postgres"
    with pytest.raises(ValidationError) as info:
        SqlCatalogConfig.model_validate({"uri": uri})
    assert "'password' field" in str(info.value)


def test_sql_catalog_wrong_password_is_unhealthy_without_the_secret(
    postgres_server: PostgresServer,
    tmp_path: Path,
) -> None:
    catalog = postgres_catalog(postgres_server, tmp_path, password=CANARY)
    health = catalog.health_check(timeout=5)
    assert health.status == "unhealthy"
    assert "password authentication failed" in health.message
    assert CANARY not in health.message and CANARY not in str(catalog.describe())
