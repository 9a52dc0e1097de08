"""The Glue catalog plugin against moto's Glue + S3 server, and (opt-in) against real AWS.

moto never throttles or denies, so those responses are injected with a botocore
``before-send.glue.<Operation>`` hook on the Glue client PyIceberg uses (``connect().glue``);
botocore's retry handler still runs, so the retries are real.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from floe_dagster.catalogs.glue import GlueCatalogConfig, GlueCatalogPlugin, aws_client_properties
from floe_dagster.plugins import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    NotSupportedError,
    UnavailableError,
)
from tests.contract.contracts import SMALL, CatalogContract, unique
from tests.fixtures.lanes import AWS_LANE_ENV, real_aws_settings
from tests.fixtures.moto_server import MotoServer

pytestmark = pytest.mark.server

CANARY = "CANARY-secret-Zq7Xw9-do-not-leak"
AWS_ENV = AWS_LANE_ENV  # one set of names for both AWS lanes (tests/fixtures/lanes.py)


def glue_catalog(raw: dict[str, Any], name: str = "contract") -> GlueCatalogPlugin:
    return GlueCatalogPlugin(name, GlueCatalogConfig.model_validate(raw))


def moto_config(server: MotoServer, bucket: str, **overrides: Any) -> dict[str, Any]:
    return {
        "region": server.region,
        "endpoint": server.endpoint,
        "s3_endpoint": server.endpoint,
        "warehouse": f"s3://{bucket}/warehouse",
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        **overrides,
    }


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Body:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.payload


def inject(
    plugin: GlueCatalogPlugin,
    operation: str,
    code: str,
    message: str,
    status: int = 400,
    times: int | None = None,
) -> list[int]:
    """Answer ``operation`` with an AWS error (the first ``times`` calls, or all); returns a call log."""
    from botocore.awsrequest import AWSResponse

    calls: list[int] = []

    def before_send(request: Any, **_: Any) -> AWSResponse | None:
        calls.append(len(calls) + 1)
        if times is not None and len(calls) > times:
            return None  # let the real request through to moto
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = {"x-amzn-RequestId": "floe-test", "Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, status, headers, _Body(body))

    plugin.connect().glue.meta.events.register(f"before-send.glue.{operation}", before_send)  # type: ignore[attr-defined]
    return calls


@pytest.fixture
def moto_catalog(moto_server: MotoServer, moto_bucket: str) -> GlueCatalogPlugin:
    return glue_catalog(moto_config(moto_server, moto_bucket))


class TestGlueCatalog(CatalogContract):
    nested_namespaces = False  # Glue databases are one level
    vends_credentials = False  # Glue has no credential vending: readers use their own AWS credentials

    @pytest.fixture
    def catalog(self, moto_catalog: GlueCatalogPlugin) -> GlueCatalogPlugin:
        return moto_catalog


def test_appends_are_written_to_s3_and_read_back(
    moto_server: MotoServer,
    moto_bucket: str,
) -> None:
    writer = glue_catalog(moto_config(moto_server, moto_bucket))
    ns = (unique("ns"),)
    writer.create_namespace(ns)
    table = writer.create_table((*ns, "events"), schema=SMALL)
    table.append(pa.table({"id": [1, 2], "name": ["a", "b"]}, schema=SMALL))
    table.append(pa.table({"id": [3], "name": ["c"]}, schema=SMALL))

    keys = [obj["Key"] for obj in moto_server.client("s3").list_objects_v2(Bucket=moto_bucket)["Contents"]]
    prefix = f"warehouse/{ns[0]}.db/events/"
    assert sum(k.startswith(prefix + "data/") and k.endswith(".parquet") for k in keys) == 2
    assert any(k.startswith(prefix + "metadata/") and k.endswith(".metadata.json") for k in keys)

    # The Glue table points at the current metadata file, and a fresh plugin reads the rows back.
    glue_table = moto_server.client("glue").get_table(DatabaseName=ns[0], Name="events")["Table"]
    assert glue_table["Parameters"]["table_type"] == "ICEBERG"
    assert glue_table["Parameters"]["metadata_location"].startswith(f"s3://{moto_bucket}/{prefix}metadata/")
    reader = glue_catalog(moto_config(moto_server, moto_bucket), name="reader")
    rows = reader.load_table((*ns, "events")).scan().to_arrow().sort_by("id")
    assert rows.column("id").to_pylist() == [1, 2, 3]
    assert rows.column("name").to_pylist() == ["a", "b", "c"]

    reader.drop_table((*ns, "events"), purge=True)
    with pytest.raises(NotFoundError):
        reader.load_table((*ns, "events"))


def test_throttling_is_retried_a_bounded_number_of_times_then_unavailable(
    moto_server: MotoServer,
    moto_bucket: str,
) -> None:
    catalog = glue_catalog(moto_config(moto_server, moto_bucket, max_attempts=3))
    calls = inject(catalog, "GetDatabases", "ThrottlingException", "Rate exceeded")
    with pytest.raises(UnavailableError) as info:
        catalog.list_namespaces()
    assert len(calls) == 3
    assert info.value.retryable is True
    assert (info.value.provider, info.value.operation) == ("glue", "list_namespaces")
    assert "ThrottlingException" in str(info.value)
    assert "gave up after 3 attempt(s), max_attempts=3" in str(info.value)

    health = catalog.health_check(timeout=8)
    assert health.status == "unhealthy" and "ThrottlingException" in health.message


def test_throttling_that_clears_within_the_attempts_succeeds(
    moto_server: MotoServer,
    moto_bucket: str,
) -> None:
    catalog = glue_catalog(moto_config(moto_server, moto_bucket, max_attempts=3))
    ns = (unique("ns"),)
    catalog.create_namespace(ns)
    calls = inject(catalog, "GetDatabases", "ThrottlingException", "Rate exceeded", times=2)
    assert ns in catalog.list_namespaces()
    assert len(calls) == 3


def test_one_attempt_means_no_retry(moto_server: MotoServer, moto_bucket: str) -> None:
    catalog = glue_catalog(moto_config(moto_server, moto_bucket, max_attempts=1))
    calls = inject(catalog, "GetDatabases", "InternalServiceException", "try later", status=500)
    with pytest.raises(UnavailableError) as info:
        catalog.list_namespaces()
    assert len(calls) == 1
    assert "gave up after 1 attempt(s), max_attempts=1" in str(info.value)


def test_access_denied_is_an_authentication_error_naming_the_permission(
    moto_server: MotoServer,
    moto_bucket: str,
) -> None:
    catalog = glue_catalog(moto_config(moto_server, moto_bucket, max_attempts=4))
    denied = (
        "User: arn:aws:iam::123456789012:user/floe is not authorized to perform: glue:GetDatabases "
        "on resource: arn:aws:glue:us-east-1:123456789012:catalog"
    )
    calls = inject(catalog, "GetDatabases", "AccessDeniedException", denied)
    with pytest.raises(AuthenticationError) as info:
        catalog.list_namespaces()
    assert len(calls) == 1  # not retried
    assert info.value.retryable is False
    assert "missing IAM permission: glue:GetDatabases" in str(info.value)

    inject(catalog, "CreateDatabase", "AccessDeniedException", "Access denied")
    with pytest.raises(AuthenticationError) as info:
        catalog.create_namespace((unique("ns"),))
    assert "AccessDeniedException" in str(info.value) and info.value.operation == "create_namespace"


def test_glue_error_codes_map_to_the_taxonomy(moto_server: MotoServer, moto_bucket: str) -> None:
    catalog = glue_catalog(moto_config(moto_server, moto_bucket, max_attempts=1))
    # PyIceberg lets DeleteDatabase's errors through unchanged: the plugin maps them.
    ns = (unique("ns"),)
    catalog.create_namespace(ns)
    inject(catalog, "DeleteDatabase", "EntityNotFoundException", "Database not found", times=1)
    with pytest.raises(NotFoundError):
        catalog.delete_namespace(ns)
    inject(catalog, "DeleteDatabase", "ConcurrentModificationException", "busy", times=1)
    with pytest.raises(ConflictError):
        catalog.delete_namespace(ns)
    catalog.delete_namespace(ns)  # both hooks let the third call through to moto
    assert ns not in catalog.list_namespaces()

    with pytest.raises(NotFoundError):
        catalog.delete_namespace((unique("missing"),))
    with pytest.raises(NotSupportedError):
        catalog.create_namespace(("a", "b"))


def test_unreachable_endpoint_is_unavailable_and_unhealthy(moto_bucket: str) -> None:
    catalog = glue_catalog(
        {
            "region": "us-east-1",
            "endpoint": f"http://127.0.0.1:{closed_port()}",
            "access_key_id": "AKIAFLOE",
            "secret_access_key": CANARY,
            "max_attempts": 2,
        }
    )
    started = time.perf_counter()
    with pytest.raises(UnavailableError) as info:
        catalog.list_namespaces()
    assert info.value.retryable is True
    assert "max_attempts=2" in str(info.value)
    assert time.perf_counter() - started < 5
    health = catalog.health_check(timeout=5)
    assert health.status == "unhealthy"


def test_a_canary_secret_never_appears_in_errors_reprs_or_logs(
    moto_server: MotoServer,
    moto_bucket: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    # botocore's own level too (see botocore_logs_reach_caplog)
    caplog.set_level(logging.DEBUG, logger="botocore")
    seen: list[str] = []
    config = moto_config(moto_server, moto_bucket, secret_access_key=CANARY, max_attempts=2)
    catalog = glue_catalog(config)
    seen += [repr(catalog), str(catalog), repr(catalog.config), str(catalog.config), str(catalog.describe())]
    seen.append(catalog.config.model_dump_json())
    seen.append(json.dumps(GlueCatalogPlugin.config_json_schema()))

    ns = (unique("ns"),)
    catalog.create_namespace(ns)
    table = catalog.create_table((*ns, "t"), schema=SMALL)
    table.append(pa.table({"id": [1], "name": ["a"]}, schema=SMALL))
    assert catalog.load_table((*ns, "t")).scan().to_arrow().num_rows == 1
    seen.append(repr(catalog.connect()))

    failures: list[tuple[Callable[[], object], type[Exception], str]] = [
        (lambda: catalog.create_namespace(ns), ConflictError, "create_namespace"),
        (lambda: catalog.load_table((*ns, "missing")), NotFoundError, "load_table"),
        (lambda: catalog.vend_credentials((*ns, "t"), ["read"]), NotSupportedError, "vend_credentials"),
    ]
    for call, error, operation in failures:
        with pytest.raises(error) as info:
            call()
        assert (info.value.provider, info.value.operation) == ("glue", operation)
        seen += [str(info.value), repr(info.value)]

    inject(catalog, "GetDatabases", "ThrottlingException", "Rate exceeded")
    inject(catalog, "GetTables", "UnrecognizedClientException", "The security token is invalid")
    injected: list[tuple[Callable[[], object], type[Exception]]] = [
        (catalog.list_namespaces, UnavailableError),
        (lambda: catalog.list_tables(ns), AuthenticationError),
    ]
    for call, error in injected:
        with pytest.raises(error) as info:
            call()
        seen += [str(info.value), repr(info.value)]
    seen.append(catalog.health_check(timeout=8).message)

    unreachable = glue_catalog({**config, "endpoint": f"http://127.0.0.1:{closed_port()}"})
    with pytest.raises(UnavailableError) as info:
        unreachable.list_namespaces()
    seen.append(str(info.value))

    with pytest.raises(ValidationError) as invalid:
        GlueCatalogConfig.model_validate({**config, "profile": "dev", "session_token": CANARY})
    seen += [str(invalid.value), repr(invalid.value), json.dumps(invalid.value.errors(), default=str)]
    with pytest.raises(ValidationError) as invalid:
        GlueCatalogConfig.model_validate({"region": "nowhere", "secret_access_key": CANARY})
    seen += [str(invalid.value), json.dumps(invalid.value.errors(), default=str)]

    logging.getLogger("floe_dagster").warning("catalog config: %s", catalog.config)
    out, err = capfd.readouterr()
    assert "CANARY" not in caplog.text
    assert "CANARY" not in out + err
    for text in seen:
        assert "CANARY" not in text, text
    assert "botocore" in caplog.text  # the DEBUG logs were really captured


def test_map_error_masks_secrets_that_a_provider_echoes(moto_server: MotoServer, moto_bucket: str) -> None:
    catalog = glue_catalog(moto_config(moto_server, moto_bucket, secret_access_key=CANARY))
    catalog.connect()
    mapped = catalog.map_error(RuntimeError(f"signature mismatch for {CANARY}"), "connect")
    assert "CANARY" not in str(mapped) and "**********" in str(mapped)


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (
            {"access_key_id": "AKIA1", "secret_access_key": CANARY, "profile": "dev"},
            "profile",
            ["access_key_id", "secret_access_key", "profile"],
        ),
        ({"access_key_id": "AKIA1"}, "secret_access_key", ["access_key_id"]),
        ({"secret_access_key": CANARY}, "access_key_id", ["secret_access_key"]),
        ({"session_token": CANARY}, "session_token", ["access_key_id", "secret_access_key"]),
        ({"external_id": "ext-1"}, "external_id", ["role_arn"]),
        ({"session_name": "floe"}, "session_name", ["role_arn"]),
        ({"profile": "dev", "role_duration_s": 900}, "role_duration_s", ["role_arn"]),
    ],
)
def test_conflicting_or_half_set_credentials_name_the_fields(
    raw: dict[str, Any], field: str, words: list[str]
) -> None:
    with pytest.raises(ValidationError) as info:
        GlueCatalogConfig.model_validate({"region": "eu-west-1", **raw})
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [(field,)]
    for word in words:
        assert word in str(info.value)
    assert "CANARY" not in str(info.value) + json.dumps(errors, default=str)


@pytest.mark.parametrize(
    ("raw", "field", "problem"),
    [
        ({"region": "Europe"}, "region", "region name"),
        ({"warehouse": "/tmp/wh"}, "warehouse", "s3://bucket"),
        ({"warehouse": "s3://"}, "warehouse", "s3://bucket"),
        ({"catalog_id": "12345"}, "catalog_id", "12-digit"),
        ({"endpoint": "glue.local:4566"}, "endpoint", "http(s) URL"),
        ({"s3_endpoint": "http://u:p@h:9000"}, "s3_endpoint", "credentials"),
        ({"role_arn": "arn:aws:iam::1:user/x"}, "role_arn", "role ARN"),
        ({"role_arn": "arn:aws:iam::123456789012:role/r", "session_name": "a b"}, "session_name", "2-64"),
        ({"max_attempts": 0}, "max_attempts", "greater than or equal to 1"),
        ({"properties": {"glue.secret-access-key": "x"}}, "properties", "credentials"),
        ({"properties": {"client.region": "x"}}, "properties", "not in properties"),
        ({"access_key_id": ""}, "access_key_id", "at least 1"),
    ],
)
def test_invalid_config_names_the_field(raw: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ValidationError) as info:
        GlueCatalogConfig.model_validate({"region": "eu-west-1", **raw})
    errors = info.value.errors()
    assert errors[0]["loc"] == (field,)
    assert problem in errors[0]["msg"]


def test_properties_for_static_keys_endpoints_catalog_id_and_retries() -> None:
    config = GlueCatalogConfig.model_validate(
        {
            "region": "eu-west-1",
            "catalog_id": "123456789012",
            "endpoint": "https://vpce-1.glue.eu-west-1.vpce.amazonaws.com/",
            "s3_endpoint": "https://bucket.vpce-2.s3.eu-west-1.vpce.amazonaws.com",
            "warehouse": "s3://lake/prefix/",
            "access_key_id": "AKIAFLOE",
            "secret_access_key": CANARY,
            "session_token": "token-1",
            "max_attempts": 4,
            "properties": {"glue.skip-archive": "false", "s3.connect-timeout": "5"},
        }
    )
    assert aws_client_properties(config) == {
        "glue.region": "eu-west-1",
        "s3.region": "eu-west-1",
        "glue.id": "123456789012",
        "glue.endpoint": "https://vpce-1.glue.eu-west-1.vpce.amazonaws.com",
        "s3.endpoint": "https://bucket.vpce-2.s3.eu-west-1.vpce.amazonaws.com",
        "glue.access-key-id": "AKIAFLOE",
        "glue.secret-access-key": CANARY,
        "glue.session-token": "token-1",
        "s3.access-key-id": "AKIAFLOE",
        "s3.secret-access-key": CANARY,
        "s3.session-token": "token-1",
        "glue.max-retries": "3",
        "glue.retry-mode": "standard",
    }
    plugin = GlueCatalogPlugin("lake", config)
    props = plugin.catalog_properties()
    assert props["type"] == "glue" and props["warehouse"] == "s3://lake/prefix"
    assert props["glue.skip-archive"] == "false" and props["s3.connect-timeout"] == "5"
    assert plugin.describe() == {
        "catalog": "lake",
        "type": "glue",
        "region": "eu-west-1",
        "credentials": "static",
        "warehouse": "s3://lake/prefix",
        "catalog_id": "123456789012",
        "endpoint": "https://vpce-1.glue.eu-west-1.vpce.amazonaws.com",
        "s3_endpoint": "https://bucket.vpce-2.s3.eu-west-1.vpce.amazonaws.com",
    }


def test_catalog_id_is_sent_with_every_glue_call(moto_server: MotoServer, moto_bucket: str) -> None:
    catalog = glue_catalog(moto_config(moto_server, moto_bucket, catalog_id="123456789012"))
    bodies: list[bytes] = []
    catalog.connect().glue.meta.events.register(  # type: ignore[attr-defined]
        "before-send.glue.GetDatabases", lambda request, **_: bodies.append(request.body)
    )
    catalog.list_namespaces()
    assert json.loads(bodies[0])["CatalogId"] == "123456789012"


def test_named_profile(
    moto_server: MotoServer,
    moto_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[floe-dev]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = {CANARY}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    raw = {**moto_config(moto_server, moto_bucket), "profile": "floe-dev"}
    del raw["access_key_id"], raw["secret_access_key"]
    catalog = glue_catalog(raw)
    props = catalog.catalog_properties()
    assert props["glue.profile-name"] == "floe-dev"
    assert "glue.access-key-id" not in props  # Glue resolves the profile itself ...
    assert props["s3.access-key-id"] == "AKIAPROFILE"  # ... PyArrow's S3 gets its resolved keys
    ns = (unique("ns"),)
    catalog.create_namespace(ns)
    catalog.create_table((*ns, "t"), schema=SMALL).append(pa.table({"id": [1], "name": ["a"]}, schema=SMALL))
    assert catalog.load_table((*ns, "t")).scan().to_arrow().num_rows == 1
    assert catalog.describe()["credentials"] == "profile"

    with pytest.raises(ConfigurationError) as info:
        glue_catalog({**raw, "profile": "no-such-profile"}).list_namespaces()
    assert "no-such-profile" in str(info.value)


def test_role_assumption_through_sts(
    moto_server: MotoServer, moto_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # botocore logs STS answers (with the role's keys) at DEBUG
    # botocore's own level too (see botocore_logs_reach_caplog)
    caplog.set_level(logging.DEBUG, logger="botocore")
    role_arn = "arn:aws:iam::123456789012:role/floe-writer"
    catalog = glue_catalog(
        moto_config(
            moto_server,
            moto_bucket,
            sts_endpoint=moto_server.endpoint,
            role_arn=role_arn,
            external_id="floe-ext",
            session_name="floe-test",
            role_duration_s=900,
        )
    )
    props = catalog.catalog_properties()
    # moto's STS hands out temporary credentials: used for Glue and S3 alike, never the source keys.
    assert props["glue.access-key-id"] != moto_server.access_key_id
    assert props["glue.session-token"] and props["s3.session-token"] == props["glue.session-token"]
    assert props["s3.secret-access-key"] == props["glue.secret-access-key"]

    ns = (unique("ns"),)
    catalog.create_namespace(ns)
    catalog.create_table((*ns, "t"), schema=SMALL).append(pa.table({"id": [1], "name": ["a"]}, schema=SMALL))
    assert catalog.load_table((*ns, "t")).scan().to_arrow().num_rows == 1
    assert catalog.describe()["credentials"] == "assume_role"
    assert catalog.describe()["role_arn"] == role_arn

    # Shortly before the temporary credentials expire the plugin assumes the role again.
    first = catalog.connect()
    catalog._expires_at = time.monotonic() - 1
    assert catalog.connect() is not first

    assert "<SecretAccessKey>**********" in caplog.text  # the STS answers were logged, masked
    for secret in (props["glue.secret-access-key"], props["glue.session-token"]):
        assert secret not in caplog.text


def test_denied_role_assumption_is_an_authentication_error(
    moto_server: MotoServer,
    moto_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.exceptions import ClientError

    import floe_dagster.catalogs.glue as glue_module

    def denied(config: GlueCatalogConfig) -> dict[str, str]:
        raise ClientError(
            {
                "Error": {
                    "Code": "AccessDenied",
                    "Message": "User: arn:aws:iam::123456789012:user/floe is not authorized to perform: "
                    "sts:AssumeRole on resource: arn:aws:iam::123456789012:role/floe-writer",
                },
                "ResponseMetadata": {"HTTPStatusCode": 403},
            },
            "AssumeRole",
        )

    monkeypatch.setattr(glue_module, "aws_client_properties", denied)
    catalog = glue_catalog(
        moto_config(moto_server, moto_bucket, role_arn="arn:aws:iam::123456789012:role/floe-writer")
    )
    with pytest.raises(AuthenticationError) as info:
        catalog.list_namespaces()
    assert info.value.operation == "connect"
    assert "missing IAM permission: sts:AssumeRole" in str(info.value)


def test_config_schema_requires_nothing_and_marks_secrets() -> None:
    schema = GlueCatalogPlugin.config_json_schema()
    assert "required" not in schema  # even the region may come from the AWS SDK's chain
    assert "AWS_REGION" in schema["properties"]["region"]["description"]
    for secret in ("secret_access_key", "session_token"):
        assert schema["properties"][secret]["anyOf"][0]["format"] == "password"


# --- credential modes and the region, against moto ----------------------------------------------


@pytest.fixture
def moto_requests(moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's own request recorder: the (lower-cased) headers of every request served while recording.

    The server runs in this process, so its recorder's file can be pointed at ``tmp_path``.
    """
    import requests
    from moto.moto_api import recorder

    recording = tmp_path / "moto_recording.jsonl"
    monkeypatch.setattr(recorder, "_location", str(recording))
    api = f"{moto_server.endpoint}/moto-api/recorder"
    requests.post(f"{api}/reset-recording", timeout=10)
    requests.post(f"{api}/start-recording", timeout=10)

    def recorded() -> list[dict[str, str]]:
        lines = recording.read_text().splitlines() if recording.exists() else []
        return [{k.lower(): v for k, v in json.loads(line)["headers"].items()} for line in lines if line]

    yield recorded
    requests.post(f"{api}/stop-recording", timeout=10)


def signed_requests(headers: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The Glue calls and the S3 requests (PyArrow's, for table files) among ``headers``."""
    glue = [h for h in headers if h.get("x-amz-target", "").startswith("AWSGlue.")]
    s3 = [h for h in headers if "/s3/aws4_request" in h.get("authorization", "")]
    return glue, s3


def write_and_read_one_row(catalog: GlueCatalogPlugin) -> tuple[str, ...]:
    ns = (unique("ns"),)
    catalog.create_namespace(ns)
    catalog.create_table((*ns, "t"), schema=SMALL).append(pa.table({"id": [1], "name": ["a"]}, schema=SMALL))
    assert catalog.load_table((*ns, "t")).scan().to_arrow().num_rows == 1
    return ns


def test_static_keys_with_a_session_token_sign_glue_and_s3_requests(
    moto_server: MotoServer,
    moto_bucket: str,
    moto_requests: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # botocore's own level too (see botocore_logs_reach_caplog)
    caplog.set_level(logging.DEBUG, logger="botocore")
    token = f"{CANARY}-session-token"
    catalog = glue_catalog(
        moto_config(moto_server, moto_bucket, access_key_id="ASIAFLOESTATIC", session_token=token)
    )
    assert catalog.describe()["credentials"] == "static"
    write_and_read_one_row(catalog)

    glue, s3 = signed_requests(moto_requests())
    assert {h["x-amz-target"] for h in glue} >= {"AWSGlue.CreateDatabase", "AWSGlue.CreateTable"}
    assert len(s3) >= 3  # metadata and data files written and read through PyArrow's S3 client
    for headers in glue + s3:
        assert headers["x-amz-security-token"] == token
        assert "Credential=ASIAFLOESTATIC/" in headers["authorization"]
    assert "CANARY" not in caplog.text


def test_region_comes_from_the_environment(
    moto_server: MotoServer,
    moto_bucket: str,
    moto_requests: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import boto3
    from botocore.exceptions import ClientError

    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")  # moto's default region here is us-east-1
    raw = moto_config(moto_server, moto_bucket)
    del raw["region"]
    catalog = glue_catalog(raw)
    assert catalog.config.region == "eu-west-1" and catalog.describe()["region"] == "eu-west-1"
    ns = write_and_read_one_row(catalog)

    glue, s3 = signed_requests(moto_requests())
    assert glue and s3
    assert all("/eu-west-1/glue/aws4_request" in h["authorization"] for h in glue)
    assert all("/eu-west-1/s3/aws4_request" in h["authorization"] for h in s3)
    # moto keeps Glue data per region: the database was created in eu-west-1, not in us-east-1
    keys = {
        "aws_access_key_id": moto_server.access_key_id,
        "aws_secret_access_key": moto_server.secret_access_key,
    }
    eu = boto3.client("glue", endpoint_url=moto_server.endpoint, region_name="eu-west-1", **keys)
    assert eu.get_database(Name=ns[0])["Database"]["Name"] == ns[0]
    with pytest.raises(ClientError):
        moto_server.client("glue").get_database(Name=ns[0])


def test_region_precedence_follows_the_aws_sdk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config_file = tmp_path / "config"
    config_file.write_text("[default]\nregion = eu-north-1\n[profile dev]\nregion = ap-south-1\n")
    credentials = tmp_path / "credentials"
    credentials.write_text("[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = dev-secret\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")

    def region(**raw: Any) -> str | None:
        return GlueCatalogConfig.model_validate(raw).region

    assert region(region="us-west-2") == "us-west-2"  # the config wins
    assert region() == "eu-west-1"  # then AWS_REGION
    monkeypatch.delenv("AWS_REGION")
    assert region() == "eu-west-2"  # then AWS_DEFAULT_REGION
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert region(profile="dev") == "ap-south-1"  # then the profile's region
    assert region() == "eu-north-1"  # (the default profile's)
    assert (
        aws_client_properties(GlueCatalogConfig.model_validate({"profile": "dev"}))["glue.region"]
        == "ap-south-1"
    )


def test_no_region_anywhere_names_the_field_and_the_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ValidationError) as info:
        GlueCatalogConfig.model_validate({"access_key_id": "AKIA1", "secret_access_key": CANARY})
    [error] = info.value.errors()
    assert error["loc"] == ("region",)
    assert "AWS_REGION" in error["msg"] and "AWS_DEFAULT_REGION" in error["msg"]
    assert "CANARY" not in str(info.value)

    monkeypatch.setenv("AWS_REGION", "Europe")
    with pytest.raises(ValidationError) as invalid:
        GlueCatalogConfig.model_validate({})
    [error] = invalid.value.errors()
    assert error["loc"] == ("region",) and "AWS_REGION = 'Europe'" in error["msg"]


def test_registered_as_the_glue_entry_point() -> None:
    from floe_dagster.plugins import get_plugin_class

    assert get_plugin_class("catalogs", "glue") is GlueCatalogPlugin


# --- Real AWS (opt-in) ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws_settings() -> dict[str, str]:
    return real_aws_settings(os.environ)


class _CleanupGluePlugin(GlueCatalogPlugin):
    """Remembers the namespaces it created so the test can remove them from the real account."""

    def __init__(self, name: str, config: GlueCatalogConfig) -> None:
        super().__init__(name, config)
        self.created: list[tuple[str, ...]] = []

    def create_namespace(self, namespace: tuple[str, ...], properties: dict[str, str] | None = None) -> None:
        super().create_namespace(namespace, properties)
        self.created.append(namespace)

    def cleanup(self) -> None:
        for namespace in self.created:
            try:
                for table in self.list_tables(namespace):
                    self.drop_table(table, purge=True)
                self.delete_namespace(namespace)
            except NotFoundError:
                pass


@pytest.fixture
def aws_catalog(aws_settings: dict[str, str]) -> Iterator[GlueCatalogPlugin]:
    catalog = _CleanupGluePlugin(
        "aws",
        GlueCatalogConfig.model_validate(
            {
                "region": aws_settings["FLOE_TEST_AWS_REGION"],
                "warehouse": aws_settings["FLOE_TEST_AWS_GLUE_WAREHOUSE"],
                "access_key_id": aws_settings["FLOE_TEST_AWS_ACCESS_KEY_ID"],
                "secret_access_key": aws_settings["FLOE_TEST_AWS_SECRET_ACCESS_KEY"],
            }
        ),
    )
    yield catalog
    catalog.cleanup()


class TestGlueCatalogOnAWS(CatalogContract):
    nested_namespaces = False
    vends_credentials = False

    @pytest.fixture
    def catalog(self, aws_catalog: GlueCatalogPlugin) -> GlueCatalogPlugin:
        return aws_catalog


def test_real_aws_lane_skips_when_unset_and_fails_fast_when_half_set() -> None:
    with pytest.raises(pytest.skip.Exception) as skipped:
        real_aws_settings({})
    assert "FLOE_TEST_AWS_GLUE_WAREHOUSE" in str(skipped.value)
    with pytest.raises(pytest.fail.Exception) as failed:
        real_aws_settings({"FLOE_TEST_AWS_ACCESS_KEY_ID": "AKIA", "FLOE_TEST_AWS_REGION": "eu-west-1"})
    assert (
        "missing: FLOE_TEST_AWS_SECRET_ACCESS_KEY, FLOE_TEST_AWS_GLUE_DATABASE, FLOE_TEST_AWS_GLUE_WAREHOUSE"
        in str(failed.value)
    )
    assert real_aws_settings(dict.fromkeys(AWS_ENV, "x")) == dict.fromkeys(AWS_ENV, "x")
