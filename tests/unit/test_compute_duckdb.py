"""The DuckDB compute's own fields: what the connection check applies, what the profile carries,
that a dbt run on the generated profile gets them, and that extensions never come from the network.

The connection check runs real DuckDB; the dbt test runs real dbt-duckdb in a subprocess.
"""

from __future__ import annotations

import ast
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from pydantic import ValidationError

from floe_dagster.computes import duckdb as duckdb_module
from floe_dagster.computes.duckdb import DuckDBComputePlugin, DuckDBConfig
from floe_dagster.computes.duckdb_extensions import (
    EXTENSION_DIR_ENV,
    connection_config,
    extension_directory,
    prepare_extension_directory,
)
from floe_dagster.plugins.compute import DbtProfileContext
from floe_dagster.plugins.telemetry import validate_compute

COMPUTE = "engine"
CANARY = "CANARY-duck-secret-5e1b"
DBT = Path(sys.executable).parent / "dbt"


def config(tmp_path: Path, **raw: Any) -> DuckDBConfig:
    return DuckDBConfig.model_validate(
        {"path": ":memory:", "extensions": [], **raw}, context={"base_dir": tmp_path}
    )


def check(tmp_path: Path, **raw: Any) -> Any:
    return validate_compute(DuckDBComputePlugin(), config(tmp_path, **raw), COMPUTE)


def duckdb_file(path: Path, sql: str = "CREATE TABLE t AS SELECT 42 AS n") -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute(sql)
    finally:
        con.close()
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the connection check applies every field, and names the one that fails -------------------


def test_a_file_not_created_yet_is_checked_without_creating_it(tmp_path: Path) -> None:
    path = tmp_path / "new" / "sub" / "lake.duckdb"
    result = check(
        tmp_path,
        path=str(path),
        threads=2,
        memory_limit="512MB",
        settings={"preserve_insertion_order": False, "default_order": "desc"},
        extensions=["iceberg"],
    )
    assert result.ok, result.message
    assert result.message == (
        f"compute '{COMPUTE}' (duckdb): duckdb {path}: not created yet (its folder is writable);"
        " the rest checked in memory"
    )
    assert not (tmp_path / "new").exists()  # a check writes nothing


def test_an_existing_file_is_opened_read_only_with_settings_and_attachments(tmp_path: Path) -> None:
    lake = duckdb_file(tmp_path / "lake.duckdb")
    other = duckdb_file(tmp_path / "other.duckdb")
    before = (lake.stat().st_mtime_ns, other.stat().st_mtime_ns)
    result = check(
        tmp_path,
        path=str(lake),
        threads=1,
        memory_limit="1GB",
        settings={"preserve_insertion_order": False},
        attach=[{"path": str(other), "alias": "other"}],
    )
    assert result.ok, result.message
    assert result.message == f"compute '{COMPUTE}' (duckdb): duckdb {lake} answered"
    assert (lake.stat().st_mtime_ns, other.stat().st_mtime_ns) == before
    assert not (tmp_path / "lake.duckdb.wal").exists()


def failure(tmp_path: Path, **raw: Any) -> str:
    result = check(tmp_path, **raw)
    assert not result.ok, result.message
    assert result.message.startswith(
        f"compute '{COMPUTE}' (duckdb): duckdb '{raw.get('path', ':memory:')}': "
    )
    assert result.message.endswith(f"(correlation id {result.correlation_id})")
    return result.message.split(": ", 1)[1]


def test_a_path_whose_folder_cannot_be_created_fails_naming_path(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a folder")
    path = tmp_path / "plain-file" / "sub" / "lake.duckdb"
    message = failure(tmp_path, path=str(path))
    assert f"path: cannot create {path}: {tmp_path / 'plain-file'} is a file, not a folder" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_a_path_in_a_read_only_folder_fails_naming_path(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    message = failure(tmp_path, path=str(locked / "lake.duckdb"))
    assert f"path: cannot create {locked / 'lake.duckdb'}: folder {locked} is not writable" in message


def test_an_unknown_setting_fails_naming_it(tmp_path: Path) -> None:
    message = failure(tmp_path, settings={"threads": 1, "no_such_setting": 1})
    assert (
        'settings.no_such_setting: Catalog Error: unrecognized configuration parameter "no_such_setting"'
        in message
    )


def test_a_bad_setting_value_fails_naming_it(tmp_path: Path) -> None:
    message = failure(tmp_path, settings={"preserve_insertion_order": "sometimes"})
    assert "settings.preserve_insertion_order: " in message


def test_a_memory_limit_beyond_the_machine_fails_naming_it(tmp_path: Path) -> None:
    message = failure(tmp_path, memory_limit="999999TB")
    assert "memory_limit: 999999TB is more than this machine's memory" in message
    assert "set a size DuckDB can keep to, e.g. '" in message


def test_memory_limit_sizes_follow_duckdb_units() -> None:
    assert duckdb_module.memory_limit_bytes("4GB") == 4 * 10**9
    assert duckdb_module.memory_limit_bytes("512MB") == 512 * 10**6
    assert duckdb_module.memory_limit_bytes("1.5 GiB") == int(1.5 * 2**30)
    # DuckDB agrees that GB is 10^9 bytes
    con = duckdb.connect()
    con.execute("SET memory_limit = '2GB'")
    assert con.execute("SELECT current_setting('memory_limit')").fetchone() == ("1.8 GiB",)


def test_a_missing_read_only_attachment_fails_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.duckdb"
    message = failure(tmp_path, attach=[{"path": str(missing), "alias": "ref"}])
    assert (
        f"attach[0] (ref): {missing} does not exist; a read_only attachment needs an existing DuckDB file"
        in message
    )
    assert not missing.exists()


def test_a_writable_attachment_not_created_yet_is_ok_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "later.duckdb"
    result = check(tmp_path, attach=[{"path": str(missing), "alias": "later", "read_only": False}])
    assert result.ok, result.message
    assert not missing.exists()


def test_an_attachment_that_is_not_a_duckdb_file_fails_naming_it(tmp_path: Path) -> None:
    good = duckdb_file(tmp_path / "good.duckdb")
    bad = tmp_path / "bad.duckdb"
    bad.write_text("not DuckDB")
    message = failure(
        tmp_path,
        attach=[{"path": str(good), "alias": "good"}, {"path": str(bad), "alias": "bad"}],
    )
    assert "attach[1] (bad): " in message and "attach[0]" not in message


# --- the profile carries the fields, extensions offline only ----------------------------------


def profile_context(tmp_path: Path) -> DbtProfileContext:
    return DbtProfileContext(
        COMPUTE, str(tmp_path / "manifest.yaml"), "dev", str(tmp_path / "state"), (), None
    )


def test_profile_carries_threads_memory_limit_settings_and_attach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(EXTENSION_DIR_ENV, raising=False)  # the default: the project's state folder
    other = duckdb_file(tmp_path / "other.duckdb")
    output = DuckDBComputePlugin().generate_dbt_profile(
        config(
            tmp_path,
            path="lake.duckdb",
            threads=3,
            memory_limit="4GB",
            dbt_threads=2,
            extensions=["iceberg"],
            settings={"preserve_insertion_order": False, "default_order": "desc"},
            attach=[{"path": "other.duckdb", "alias": "other"}],
        ),
        profile_context(tmp_path),
    )
    assert output["path"] == str(tmp_path / "lake.duckdb")
    assert output["threads"] == 2  # dbt's threads; DuckDB's own go in settings
    assert output["settings"] == {
        "preserve_insertion_order": False,
        "default_order": "desc",
        "memory_limit": "4GB",
        "threads": 3,
    }
    assert output["attach"] == [{"path": str(other), "alias": "other", "read_only": True}]
    assert output["extensions"] == ["iceberg"]
    assert output["config_options"] == {
        "extension_directory": str(tmp_path / "state" / "duckdb_extensions"),
        "autoinstall_known_extensions": False,
    }


def test_profile_without_optional_fields_leaves_them_out(tmp_path: Path) -> None:
    output = DuckDBComputePlugin().generate_dbt_profile(config(tmp_path), profile_context(tmp_path))
    assert "settings" not in output and "attach" not in output
    assert output["config_options"]["autoinstall_known_extensions"] is False


@pytest.mark.parametrize("size", ["4GB", "512MB", "1.5GiB", "800 MiB"])
def test_memory_limit_accepts_sizes(tmp_path: Path, size: str) -> None:
    assert config(tmp_path, memory_limit=size).memory_limit == size


# --- no credential in settings (profiles.yml is clear text) ------------------------------------


@pytest.mark.parametrize(
    "key", ["s3_secret_access_key", "s3_session_token", "http_proxy_password", "s3_access_key_id"]
)
def test_a_credential_in_settings_is_refused_without_showing_it(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValidationError) as info:
        config(tmp_path, settings={"threads": 1, key: CANARY})
    [error] = info.value.errors()
    assert error["loc"] == ("settings", key)
    assert "written to profiles.yml in clear text" in error["msg"]
    assert "AWS_SECRET_ACCESS_KEY" in error["msg"]
    assert CANARY not in str(info.value)


def test_settings_that_only_mention_secrets_are_allowed(tmp_path: Path) -> None:
    allowed = {"secret_directory": str(tmp_path / "secrets"), "allow_persistent_secrets": False}
    assert config(tmp_path, settings=allowed).settings == allowed


def test_a_credential_in_manifest_settings_points_at_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from floe_dagster import cli

    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: t\nprofile: t\n")
    (tmp_path / "manifest.yaml").write_text(
        "apiVersion: floe.dev/v1\nkind: Manifest\nmetadata: {name: m}\n"
        "computes:\n  approved: [duck]\n  default: duck\n  targets:\n    duck:\n      type: duckdb\n"
        "      config:\n        settings:\n          s3_region: eu-west-1\n"
        "          s3_secret_access_key: ${env:FLOE_TEST_S3_SECRET}\n"
        "transforms:\n  dbt_project: dbt\n"
    )
    monkeypatch.setenv("FLOE_TEST_S3_SECRET", CANARY)
    assert cli.main(["validate", str(tmp_path / "manifest.yaml")]) == 1
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "manifest.yaml:13:33: computes.targets.duck.config.settings.s3_secret_access_key: " in text, text
    assert "written to profiles.yml in clear text" in text
    assert CANARY not in text


# --- a real dbt run gets the settings, and never installs an extension from the network -------

MANIFEST = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata: {{name: duck-fields}}
state_dir: state
computes:
  approved: [duck]
  default: duck
  targets:
    duck:
      type: duckdb
      config:
        path: state/duck.duckdb
        threads: 3
        memory_limit: 1500MB
        extensions: [iceberg]
        settings: {{preserve_insertion_order: false, default_order: desc}}
        attach: [{{path: {reference}, alias: ref}}]
transforms:
  dbt_project: dbt
"""

PROBE_MODEL = """\
select
  current_setting('threads') as threads,
  current_setting('memory_limit') as memory_limit,
  current_setting('preserve_insertion_order') as preserve_insertion_order,
  current_setting('default_order') as default_order,
  current_setting('autoinstall_known_extensions') as autoinstall,
  current_setting('extension_directory') as extension_directory,
  (select count(*) from duckdb_extensions() where extension_name = 'iceberg' and loaded) as iceberg_loaded,
  (select n from ref.main.t) as attached
"""


def blocked_network_profile(profiles: Path, repository: str) -> None:
    """Point every extension download of the generated output at a closed port (nothing else changes)."""
    path = profiles / "profiles.yml"
    document = yaml.safe_load(path.read_text())
    output = document["floe_duck"]["outputs"]["duck"]
    output["config_options"]["custom_extension_repository"] = repository
    path.write_text(yaml.safe_dump(document))


@pytest.mark.e2e
def test_a_dbt_run_gets_the_fields_and_loads_extensions_offline_with_the_network_blocked(
    tmp_path: Path,
) -> None:
    from floe_dagster.manifest import load_manifest
    from floe_dagster.transforms.profiles import write_profiles

    reference = duckdb_file(tmp_path / "reference.duckdb")
    (tmp_path / "dbt" / "models").mkdir(parents=True)
    (tmp_path / "dbt" / "dbt_project.yml").write_text(
        "name: floe_duck\nversion: '1.0'\nconfig-version: 2\nprofile: floe_duck\n"
        "models:\n  floe_duck:\n    +materialized: table\n"
    )
    (tmp_path / "dbt" / "models" / "probe.sql").write_text(PROBE_MODEL)
    (tmp_path / "manifest.yaml").write_text(MANIFEST.format(reference=reference))
    loaded = load_manifest(tmp_path / "manifest.yaml")
    profiles = write_profiles(loaded)  # also fills the offline extension folder from the wheels
    port = closed_port()
    repository = f"http://127.0.0.1:{port}"
    blocked_network_profile(profiles, repository)
    proxy = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
        **{name: proxy for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")},
    }
    run = subprocess.run(
        [str(DBT), "run", "--project-dir", str(tmp_path / "dbt"), "--profiles-dir", str(profiles)],
        cwd=tmp_path / "dbt",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]

    expected_memory = duckdb.connect().execute(
        "SET memory_limit = '1500MB'; SELECT current_setting('memory_limit')"
    )
    con = duckdb.connect(str(tmp_path / "state" / "duck.duckdb"), read_only=True)
    try:
        row = con.execute("SELECT * FROM main.probe").fetchone()
    finally:
        con.close()
    assert row == (
        3,
        expected_memory.fetchone()[0],
        False,
        "DESC",
        False,
        str(extension_directory(tmp_path / "state" / "duckdb_extensions")),
        1,
        42,
    )

    # The block is real: an extension missing from the offline folder, installed the way
    # dbt-duckdb installs them under the same connection options, goes to the closed port and fails.
    output = yaml.safe_load((profiles / "profiles.yml").read_text())["floe_duck"]["outputs"]["duck"]
    con = duckdb.connect(":memory:", config=output["config_options"])
    try:
        con.install_extension("iceberg")  # present offline: no download
        with pytest.raises(
            duckdb.IOException, match=f'Failed to download extension "spatial" at URL "{repository}'
        ):
            con.install_extension("spatial")
    finally:
        con.close()
    assert output["config_options"] == {
        **connection_config(extension_directory(tmp_path / "state" / "duckdb_extensions")),
        "custom_extension_repository": repository,
    }


def test_one_shared_extension_folder_replaces_the_per_project_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared-extensions"
    monkeypatch.setenv(EXTENSION_DIR_ENV, str(shared))
    output = DuckDBComputePlugin().generate_dbt_profile(
        config(tmp_path, extensions=["iceberg"]), profile_context(tmp_path)
    )
    assert output["config_options"]["extension_directory"] == str(shared)


INSTALL_ONE = """
import sys
from pathlib import Path
from floe_dagster.computes.duckdb_extensions import connect_with_extensions
con = connect_with_extensions(":memory:", Path(sys.argv[1]), ["iceberg", "delta"])
loaded = con.execute("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()
print(sorted(r[0] for r in loaded))
"""


def test_processes_installing_into_one_folder_at_once_all_load_whole_extensions(tmp_path: Path) -> None:
    folder = tmp_path / "extensions"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", INSTALL_ONE, str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]
        assert {"avro", "delta", "iceberg"} <= set(ast.literal_eval(out.strip()))
    installed = sorted(p.name for p in folder.rglob("*.duckdb_extension"))
    assert installed == sorted(
        f"{n}.duckdb_extension" for n in ("avro", "delta", "httpfs", "iceberg")
    ), installed
    assert not list(folder.glob(".floe-staging-*")), "a staging folder was left behind"
    # a second call finds everything and installs nothing (no staging folder, same files)
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*.duckdb_extension")}
    prepare_extension_directory(folder, ["iceberg", "delta"])
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.duckdb_extension")} == before
