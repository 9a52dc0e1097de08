"""The metastore chokepoint: provider inference, typed credentials, load-time limits, and the rule
that no connector module reads the environment or maps a credential itself.

The last is checked on the source (AST) of every module in ``floe_dagster/metastores/``: the
places allowed to do those things are ``plugins/factory.py`` (environment) and
``plugins/metastore_auth.py`` (credentials).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from floe_dagster.core.errors import ConfigurationError, InvalidFieldError
from floe_dagster.manifest.errors import ManifestError
from floe_dagster.manifest.loader import load_manifest
from floe_dagster.manifest.schema import MetastoreEntry
from floe_dagster.metastores.dataproc import DataprocMetastoreConnector
from floe_dagster.metastores.glue import GlueMetastoreConnector
from floe_dagster.metastores.hive import HiveMetastoreConfig, HiveMetastoreConnector
from floe_dagster.plugins.factory import (
    LOAD_TIME_LIMITS,
    connect_metastore,
    infer_metastore_provider,
    load_time_config,
)
from floe_dagster.plugins.metastore_auth import (
    AwsCredentials,
    GoogleCredentials,
    ThriftCredentials,
    metastore_credentials,
)
from tests.helpers import REPO, copy_demo_project

CONNECTOR_MODULES = sorted((REPO / "floe_dagster" / "metastores").glob("*.py"))
CANARY = "CANARY-chokepoint-7f3e-do-not-leak"
AWS_KEY_ARGUMENTS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


# --- no connector reads the environment or maps a credential --------------------------------------


def violations(source: str) -> list[str]:
    """What in ``source`` reads the environment or handles a credential outside the chokepoint."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            found.append(f"line {node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            bad = [a.name for a in node.names if a.name in ("environ", "getenv", "environb")]
            found += [f"line {node.lineno}: from os import {name}" for name in bad]
        elif isinstance(node, ast.Attribute) and node.attr == "get_secret_value":
            found.append(f"line {node.lineno}: unwraps a SecretStr (.get_secret_value)")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            )
            for module in modules:
                if module.startswith(("google.auth", "google.oauth2")):
                    found.append(f"line {node.lineno}: builds Google credentials ({module})")
                if module == "boto3" or module.startswith(
                    ("boto3.", "botocore.session", "botocore.credentials")
                ):
                    found.append(f"line {node.lineno}: builds an AWS session or credentials ({module})")
                if module.endswith("aws_credentials"):
                    found.append(f"line {node.lineno}: resolves AWS credentials itself ({module})")
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name in ("aws_client_properties", "aws_session", "frozen_keys"):
                        found.append(f"line {node.lineno}: resolves AWS credentials itself ({alias.name})")
        elif isinstance(node, ast.keyword) and node.arg in AWS_KEY_ARGUMENTS:
            found.append(f"line {node.value.lineno}: hands AWS keys to a client itself ({node.arg}=)")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "SECRET" in node.value
            and ("CREATE" in node.value.upper() or "TYPE S3" in node.value.upper())
        ):
            found.append(f"line {node.lineno}: builds a DuckDB secret")
    return found


@pytest.mark.parametrize("module", CONNECTOR_MODULES, ids=lambda p: p.name)
def test_connector_modules_neither_read_the_environment_nor_map_credentials(module: Path) -> None:
    found = violations(module.read_text())
    assert not found, f"{module.name} bypasses the metastore chokepoint: {found}"


def test_the_chokepoint_check_catches_each_kind_of_bypass() -> None:
    bypasses = {
        "import os\nx = os.environ['AWS_SECRET_ACCESS_KEY']": "os.environ",
        "import os\nx = os.getenv('HIVE_PASSWORD')": "os.getenv",
        "from os import environ": "from os import environ",
        "x = config.password.get_secret_value()": "get_secret_value",
        "from google.oauth2 import service_account": "google.oauth2",
        "import google.auth": "google.auth",
        "sql = f\"CREATE SECRET s (TYPE s3, KEY_ID '{k}')\"": "DuckDB secret",
        # the S3 connector before issue 17 (item 10): its own resolution and its own client
        "from floe_dagster.catalogs.glue import aws_client_properties": "aws_client_properties",
        "import boto3\ns = boto3.session.Session()": "boto3",
        "c = session.client('s3', aws_access_key_id=props.get(KEY))": "aws_access_key_id=",
        "from floe_dagster.plugins.aws_credentials import aws_session": "aws_credentials",
    }
    for source, what in bypasses.items():
        assert any(what in v for v in violations(source)), (source, violations(source))
    assert violations("def from_options(name, options, environ=None):\n    return environ") == []


# --- typed credentials from the chokepoint ---------------------------------------------------------


def test_each_provider_receives_typed_credentials_from_the_chokepoint() -> None:
    hive = connect_metastore(
        "lake",
        "hive",
        {"uri": "thrift://h:9083", "auth": "plain", "user": "floe", "password": CANARY},
        environ={},
    )
    assert isinstance(hive, HiveMetastoreConnector) and isinstance(hive.credentials, ThriftCredentials)
    assert isinstance(hive.credentials.password, SecretStr)
    assert hive.auth_strategy() == "plain (SASL PLAIN, user floe, password set)"
    assert CANARY not in repr(hive.credentials) and CANARY not in hive.debug_report()

    glue = connect_metastore(
        "lake",
        "glue",
        {"region": "eu-west-1", "access_key_id": "AKIA1", "secret_access_key": CANARY},
        environ={},
    )
    assert isinstance(glue, GlueMetastoreConnector) and isinstance(glue.credentials, AwsCredentials)
    assert glue.auth_strategy() == "static"
    secret = glue.credentials.duckdb_secret_sql("s", scopes=["s3://b1", "s3://b2"])
    assert "KEY_ID 'AKIA1'" in secret and "SCOPE ['s3://b1', 's3://b2']" in secret
    assert "REGION 'eu-west-1'" in secret

    dataproc = connect_metastore(
        "lake",
        "dataproc",
        {"project": "floe-project", "location": "us-central1", "service": "hms", "key_json": "{not json"},
        environ={},
    )
    assert isinstance(dataproc, DataprocMetastoreConnector)
    assert isinstance(dataproc.credentials, GoogleCredentials)
    assert dataproc.credentials.mode == "service_account (key_json)"
    with pytest.raises(ConfigurationError) as info:
        dataproc.google_credentials()
    assert (info.value.provider, info.value.operation) == ("dataproc", "connect")
    assert "key_json" in str(info.value) and "{not json" not in str(info.value)


def test_credentials_depend_on_the_config_model_not_on_the_caller() -> None:
    config = HiveMetastoreConfig.model_validate(
        {"uri": "thrift://h:1", "io_properties": {"s3.secret-access-key": CANARY}}
    )
    credentials = metastore_credentials(config)
    assert isinstance(credentials, ThriftCredentials)
    assert credentials.file_io_properties() == {"s3.secret-access-key": CANARY}
    assert CANARY not in repr(credentials)


# --- provider inference ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "provider"),
    [
        ({"catalog": "lakehouse"}, "iceberg"),
        ({"uri": "thrift://hms-a:9083,thrift://hms-b:9083"}, "hive"),
        ({"region": "eu-west-1", "catalog_id": "123456789012"}, "glue"),
        ({"project": "p-123456", "location": "us-central1", "service": "hms"}, "dataproc"),
        ({"bucket": "landing", "region": "eu-west-1"}, "s3"),
    ],
)
def test_the_provider_is_inferred_from_the_config(config: dict[str, Any], provider: str) -> None:
    assert infer_metastore_provider(config) == provider
    assert MetastoreEntry.model_validate({"config": config}).type == provider


def test_an_explicit_type_is_kept_and_an_uninferable_one_is_a_clear_error() -> None:
    assert MetastoreEntry.model_validate({"type": "glue", "config": {"bucket": "x"}}).type == "glue"
    with pytest.raises(InvalidFieldError) as info:
        infer_metastore_provider({"region": "eu-west-1"})
    assert info.value.field == "type" and "set `type:`" in str(info.value)
    assert "config.bucket -> s3" in str(info.value)
    assert "config.project + config.service -> dataproc" in str(info.value)


def write_manifest(tmp_path: Path, metastores_block: str) -> Path:
    root = copy_demo_project(tmp_path / "project")
    manifest = root / "manifests" / "manifest.yaml"
    text = manifest.read_text()
    start = text.index("metastores:\n")
    end = text.index("\ntransforms:")
    manifest.write_text(text[:start] + metastores_block + text[end:])
    return manifest


def test_a_manifest_without_type_loads_with_the_inferred_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOE_ENV", raising=False)
    manifest = write_manifest(
        tmp_path,
        "metastores:\n"
        "  lakehouse:\n    config: {catalog: lakehouse}\n"
        '  legacy:\n    config: {uri: "thrift://127.0.0.1:9083"}\n',
    )
    loaded = load_manifest(manifest)
    assert {n: e.type for n, e in loaded.manifest.metastores.items()} == {
        "lakehouse": "iceberg",
        "legacy": "hive",
    }
    assert type(loaded.plugin_config("metastores", "legacy")).__name__ == "HiveMetastoreConfig"


def test_an_uninferable_metastore_is_an_error_at_its_position(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path,
        "metastores:\n  lakehouse:\n    type: iceberg\n    config: {catalog: lakehouse}\n"
        "  mystery:\n    config: {region: eu-west-1}\n",
    )
    with pytest.raises(ManifestError) as info:
        load_manifest(manifest)
    text = str(info.value)
    line = manifest.read_text().splitlines().index("  mystery:") + 1
    assert f"manifest.yaml:{line}:" in text or f"manifest.yaml:{line + 1}:" in text, text
    assert "cannot infer the metastore provider" in text and "set `type:`" in text


# --- asset key mapping in the manifest -------------------------------------------------------------


def test_asset_key_mapping_is_validated_with_positions(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path,
        "metastores:\n  lakehouse:\n    type: iceberg\n    config: {catalog: lakehouse}\n"
        "    asset_key_prefix: [warehouse, '']\n"
        "    asset_keys:\n"
        "      orders: finance/orders\n"
        "      raw.payments: finance//payments\n"
        "      raw.customers: finance/people\n"
        "      raw.people: finance/people\n",
    )
    with pytest.raises(ManifestError) as info:
        load_manifest(manifest)
    lines = manifest.read_text().splitlines()
    problems = {p.message: p.position.line for p in info.value.problems}

    def line_of(text: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if text in line)

    not_a_table = next(m for m in problems if "'orders' is not a table name" in m)
    assert problems[not_a_table] == line_of("orders: finance/orders") and "<namespace>.<table>" in not_a_table
    bad_key = next(m for m in problems if "finance//payments" in m)
    assert problems[bad_key] == line_of("finance//payments") and "separated by '/'" in bad_key
    empty_part = next(m for m in problems if "is not an asset key part" in m)
    assert problems[empty_part] == line_of("asset_key_prefix")


def test_two_tables_mapped_to_one_key_are_refused() -> None:
    with pytest.raises(ValueError, match="'raw.a' and 'raw.b' are both mapped to asset key 'x/y'"):
        MetastoreEntry.model_validate({"type": "hive", "asset_keys": {"raw.a": "x/y", "raw.b": "x/y"}})


# --- load-time limits ------------------------------------------------------------------------------


def test_load_time_config_lowers_retries_and_timeouts_only() -> None:
    config = HiveMetastoreConfig.model_validate(
        {"uri": "thrift://h:1", "retries": 5, "connect_timeout_s": 30, "read_timeout_s": 1, "pool_size": 3}
    )
    quick = load_time_config(config)
    assert (quick.retries, quick.connect_timeout_s, quick.pool_size) == (0, 2.0, 3)
    assert quick.read_timeout_s == 1  # a lower manifest setting stays
    assert config.retries == 5  # the original is untouched
    glue = connect_metastore(
        "lake", "glue", {"region": "eu-west-1", "max_attempts": 7}, environ={}, quick=True
    )
    assert glue.config.max_attempts == 1 == LOAD_TIME_LIMITS["max_attempts"]
    assert json.loads(glue.config.model_dump_json())["connect_timeout_s"] == 2.0
