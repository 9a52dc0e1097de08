"""The default AWS credential chain (issue 17, items 11-12) against moto's server.

No keys in the manifest: credentials only in the environment, only in a profile file
(``AWS_SHARED_CREDENTIALS_FILE`` / ``AWS_CONFIG_FILE`` in a tmp dir), or from an assumed role.
Each time the Glue metastore lists its tables and DuckDB reads one from moto's S3 with the
secret the chokepoint builds (explicit keys resolved by boto3: DuckDB's ``aws`` extension,
which ``PROVIDER credential_chain`` needs, is not shipped). An assumed role of the Glue and S3
metastores is assumed again when it expires, on the same connector.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from floe_dagster.metastores.glue import GlueMetastoreConnector
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.readers.duckdb_scan import relation_sql, scan_connection
from tests.fixtures.glue_seed import SeededGlue, seed_glue
from tests.fixtures.moto_server import MotoServer

AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture(scope="module")
def seeded(moto_server: MotoServer) -> SeededGlue:
    return seed_glue(moto_server)


@pytest.fixture
def clean_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No AWS credentials anywhere but where a test puts them (and no instance metadata)."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield tmp_path


def keyless_glue(server: MotoServer, **extra: Any) -> GlueMetastoreConnector:
    options = {"region": server.region, "endpoint": server.endpoint, "s3_endpoint": server.endpoint, **extra}
    built = connect_metastore("lake", "glue", options, environ={})
    assert isinstance(built, GlueMetastoreConnector)
    return built


def reads_orders(glue: GlueMetastoreConnector, seeded: SeededGlue) -> None:
    assert "orders" in glue.list_tables(seeded.db)
    scan = glue.describe_scan(seeded.db, "orders")
    con = scan_connection([scan], credentials=glue.credentials)  # the chokepoint's DuckDB secret
    try:
        assert con.sql(f"SELECT count(*) FROM {relation_sql(scan)}").fetchone() == (5,)
    finally:
        con.close()


def test_credentials_only_in_the_environment(
    seeded: SeededGlue, clean_aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = seeded.server
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_access_key)
    glue = keyless_glue(server)
    assert glue.auth_strategy() == "default_chain"
    secret = glue.credentials.duckdb_secret_sql("s")
    assert "credential_chain" not in secret and f"KEY_ID '{server.access_key_id}'" in secret
    reads_orders(glue, seeded)


def test_credentials_only_in_a_profile_file(seeded: SeededGlue, clean_aws_env: Path) -> None:
    server = seeded.server
    (clean_aws_env / "no-credentials").write_text(
        f"[default]\naws_access_key_id = {server.access_key_id}\n"
        f"aws_secret_access_key = {server.secret_access_key}\n"
    )
    reads_orders(keyless_glue(server), seeded)  # the default chain finds the default profile
    (clean_aws_env / "no-config").write_text("[profile floe]\nregion = us-east-1\n")
    (clean_aws_env / "no-credentials").write_text(
        f"[floe]\naws_access_key_id = {server.access_key_id}\n"
        f"aws_secret_access_key = {server.secret_access_key}\n"
    )
    reads_orders(keyless_glue(server, profile="floe"), seeded)  # a named profile


def test_credentials_from_an_assumed_role(
    seeded: SeededGlue, clean_aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = seeded.server
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_access_key)
    glue = keyless_glue(
        server, role_arn="arn:aws:iam::123456789012:role/floe-reader", sts_endpoint=server.endpoint
    )
    secret = glue.credentials.duckdb_secret_sql("s")
    assert server.access_key_id not in secret and "SESSION_TOKEN" in secret  # the role's keys
    reads_orders(glue, seeded)


def expire(credentials: Any) -> None:
    """Make botocore's refreshable credentials of a connector due for refresh now."""
    refreshable = credentials.session().get_credentials()
    assert hasattr(refreshable, "_expiry_time"), "an assumed role must be refreshable"
    refreshable._expiry_time = datetime.now(UTC) - timedelta(seconds=1)


def count_assume_role(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import botocore.client

    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def spy(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "AssumeRole":
            calls.append(params["RoleArn"])
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    return calls


def test_the_glue_metastore_assumes_its_role_again_when_it_expires(
    seeded: SeededGlue, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = seeded.server
    calls = count_assume_role(monkeypatch)
    glue = keyless_glue(
        server,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        role_arn="arn:aws:iam::123456789012:role/floe-reader",
        sts_endpoint=server.endpoint,
    )
    assert "orders" in glue.list_tables(seeded.db) and len(calls) == 1
    first = glue.storage_properties()["s3.access-key-id"]
    expire(glue.credentials)
    assert "orders" in glue.list_tables(seeded.db)  # the same client, the role assumed again
    assert len(calls) == 2 and glue.storage_properties()["s3.access-key-id"] != first


def test_the_s3_metastore_assumes_its_role_again_when_it_expires(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = moto_server.create_bucket("chain")
    moto_server.client("s3").put_object(Bucket=bucket, Key="raw/t/part-0.csv", Body=b"id\n1\n")
    calls = count_assume_role(monkeypatch)
    s3 = connect_metastore(
        "lake",
        "s3",
        {
            "bucket": bucket,
            "region": moto_server.region,
            "endpoint": moto_server.endpoint,
            "file_type": "csv",
            "access_key_id": moto_server.access_key_id,
            "secret_access_key": moto_server.secret_access_key,
            "role_arn": "arn:aws:iam::123456789012:role/floe-ingest",
            "sts_endpoint": moto_server.endpoint,
        },
        environ={},
    )
    assert isinstance(s3, S3MetastoreConnector)
    namespace = s3.list_namespaces()[0]
    tables = s3.list_tables(namespace)
    assert tables and len(calls) == 1
    expire(s3.credentials)
    s3._tables = None  # list again, with the same client
    assert s3.list_tables(namespace) == tables and len(calls) == 2
