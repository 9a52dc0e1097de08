"""The Dataproc Metastore connector: GetService through the real API client, then the real HMS.

No real Dataproc Metastore can run here, so ``FakeMetastoreApi`` is a local HTTP server on
127.0.0.1 that implements the public Dataproc Metastore API v1 ``GetService`` REST response
(``GET /v1/projects/*/locations/*/services/*`` answering the documented ``Service`` JSON, or
the documented error body) and, for service-account keys, an OAuth2 token endpoint. The
connector's client is the real ``google-cloud-dataproc-metastore`` REST transport pointed at it;
the ``endpointUri`` it returns is the real Hive Metastore fixture's Thrift URI, so everything
after the API call is real. A lane against real GCP runs when ``FLOE_TEST_GCP_*`` is set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from floe_dagster.core.errors import (
    AuthenticationError,
    InvalidFieldError,
    NotFoundError,
    NotSupportedError,
    UnavailableError,
)
from floe_dagster.metastores.dataproc import DataprocMetastoreConnector
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.plugins.table_model import TableFilter
from tests.contract.contracts import MetastoreContract
from tests.fixtures.dataproc_api import LOCATION, PROJECT, SERVICE, FakeMetastoreApi
from tests.fixtures.hive_metastore import SeededMetastore

pytestmark = pytest.mark.server

GCP_ENV = ("FLOE_TEST_GCP_PROJECT", "FLOE_TEST_GCP_LOCATION", "FLOE_TEST_GCP_SERVICE")


@pytest.fixture(scope="module")
def fake_api(seeded_hive_metastore: SeededMetastore) -> Iterator[FakeMetastoreApi]:
    api = FakeMetastoreApi()
    api.services[f"projects/{PROJECT}/locations/{LOCATION}/services/{SERVICE}"] = (
        seeded_hive_metastore.metastore.uri
    )
    yield api
    api.close()


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "fake_api" in request.fixturenames:
        api: FakeMetastoreApi = request.getfixturevalue("fake_api")
        api.state, api.protocol, api.failures, api.token = "ACTIVE", "THRIFT", 0, None
        api.verify_bearer = None


def dataproc(api: FakeMetastoreApi, **overrides: Any) -> DataprocMetastoreConnector:
    options = {
        "project": PROJECT,
        "location": LOCATION,
        "service": SERVICE,
        "api_endpoint": api.endpoint,
        "anonymous": True,
        "backoff_s": 0.01,
        "backoff_max_s": 0.05,
        **overrides,
    }
    built = connect_metastore(
        "lake", "dataproc", {k: v for k, v in options.items() if v is not None}, environ={}
    )
    assert isinstance(built, DataprocMetastoreConnector)
    return built


class TestDataprocMetastoreConnector(MetastoreContract):
    @pytest.fixture
    def metastore(self, fake_api: FakeMetastoreApi) -> Iterator[DataprocMetastoreConnector]:
        with dataproc(fake_api) as built:
            yield built

    @pytest.fixture
    def existing_table(self, seeded_hive_metastore: SeededMetastore) -> tuple[str, str]:
        return seeded_hive_metastore.db, "orders_orc"


def test_get_service_resolves_the_thrift_endpoint_then_thrift_is_real(
    fake_api: FakeMetastoreApi, seeded_hive_metastore: SeededMetastore
) -> None:
    seeded = seeded_hive_metastore
    with dataproc(fake_api) as conn:
        assert seeded.db in conn.list_namespaces()
        assert conn.endpoint_uri == seeded.metastore.uri
        assert conn.list_tables(seeded.db) == list(seeded.tables)
        tables = conn.get_tables(seeded.db, ["orders_orc", "ice_customers"])
        assert [t.storage.format for t in tables] == ["orc", "iceberg"]
        assert conn.call_counts["GetService"] == 1  # resolved once
        scanned = list(conn.scan(TableFilter(include=(f"{seeded.db}.*",))))
        assert [t.name for t in scanned] == list(seeded.tables)
        assert conn.call_counts["GetService"] == 1
    method, path, headers = fake_api.requests[-1]
    assert (method, path.split("?")[0]) == (
        "GET",
        f"/v1/projects/{PROJECT}/locations/{LOCATION}/services/{SERVICE}",
    )


def test_partitions_and_stats_are_explicitly_unsupported(
    fake_api: FakeMetastoreApi, seeded_hive_metastore: SeededMetastore
) -> None:
    seeded = seeded_hive_metastore
    with dataproc(fake_api) as conn:
        for call in (
            lambda: conn.list_partitions(seeded.db, "events"),
            lambda: conn.table_stats(seeded.db, "events"),
        ):
            with pytest.raises(NotSupportedError) as info:
                call()
            assert info.value.provider == "dataproc" and info.value.retryable is False
        with pytest.raises(NotSupportedError) as info:
            conn.list_partitions(seeded.db, "events")
        assert info.value.operation == "list_partitions"
        events = conn.get_table(seeded.db, "events")
        assert events.stats.row_count is None and events.stats.partition_count is None
        scan = conn.describe_scan(seeded.db, "events")
        assert scan.partitions is None  # the whole location, never a silent empty partition list


def test_thrift_errors_are_tagged_dataproc(
    fake_api: FakeMetastoreApi, seeded_hive_metastore: SeededMetastore
) -> None:
    with dataproc(fake_api) as conn:
        with pytest.raises(NotFoundError) as info:
            conn.get_table(seeded_hive_metastore.db, "nope")
        assert info.value.tags() == {"provider": "dataproc", "operation": "get_table", "retryable": "false"}
        unreadable = list(conn.scan(TableFilter(include=(f"{seeded_hive_metastore.bad_db}.*",))))
        assert [t.readable for t in unreadable] == [False, False] and conn.scan_problems == []


def test_nothing_user_visible_says_hive_on_the_dataproc_path(
    fake_api: FakeMetastoreApi, seeded_hive_metastore: SeededMetastore
) -> None:
    """Tables, errors and diagnostics name the dataproc metastore; the Thrift path is an implementation."""
    import socket

    seeded = seeded_hive_metastore
    with dataproc(fake_api) as conn:
        table = conn.get_table(seeded.db, seeded.partitioned)
        assert table.catalog == "lake"
        scan = conn.describe_scans(seeded.db, [seeded.partitioned, "nope"])
        missing = scan[1]
        assert isinstance(missing, NotFoundError) and missing.provider == "dataproc"
        with pytest.raises(NotFoundError) as not_found:
            conn.get_table(seeded.db, "nope")
        visible = [
            str(table.catalog),
            table.table_type,
            conn.debug_report(),
            str(conn.describe()),
            conn.auth_strategy(),
            str(not_found.value),
            str(missing),
        ]
        assert [v for v in visible if "hive" in v.lower()] == []

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    dead = FakeMetastoreApi()
    dead.services[f"projects/{PROJECT}/locations/{LOCATION}/services/{SERVICE}"] = (
        f"thrift://127.0.0.1:{closed}"
    )
    try:
        conn = dataproc(dead, retries=1)
        with pytest.raises(UnavailableError) as info:
            conn.list_namespaces()
        error = info.value
        assert (error.provider, error.operation, error.retryable) == ("dataproc", "list_namespaces", True)
        assert "hive" not in str(error).lower() and str(error).startswith(
            "[dataproc:list_namespaces] dataproc"
        )
        assert getattr(error, "attempts", None) == 2
    finally:
        dead.close()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"location": "us-central"}, "location"),
        ({"location": "US_CENTRAL1"}, "location"),
        ({"service": "Bad_Service"}, "service"),
        ({"api_endpoint": "https://europe-west1-metastore.googleapis.com"}, "api_endpoint"),
    ],
)
def test_invalid_region_or_service_is_a_validation_error_with_the_endpoint_hint(
    overrides: dict[str, str], field: str
) -> None:
    options = {"project": PROJECT, "location": LOCATION, "service": SERVICE, "anonymous": True, **overrides}
    with pytest.raises(InvalidFieldError) as info:
        connect_metastore("lake", "dataproc", options, environ={})
    text = str(info.value)
    assert info.value.provider == "dataproc" and field in text
    assert "<region>-metastore.googleapis.com" in text and "/v1/projects/" in text


def test_missing_fields_name_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidFieldError) as info:
        connect_metastore("lake", "dataproc", {"location": LOCATION, "service": SERVICE}, environ={})
    assert info.value.field == "project" and "GOOGLE_CLOUD_PROJECT" in str(info.value)
    built = connect_metastore(
        "lake",
        "dataproc",
        {"location": LOCATION, "service": SERVICE},
        environ={"GOOGLE_CLOUD_PROJECT": PROJECT},
    )
    assert built.config.project == PROJECT  # type: ignore[attr-defined]


def test_unknown_service_is_not_found_with_the_hint(fake_api: FakeMetastoreApi) -> None:
    conn = dataproc(fake_api, service="other-hms")
    with pytest.raises(NotFoundError) as info:
        conn.list_namespaces()
    assert info.value.tags() == {"provider": "dataproc", "operation": "resolve_service", "retryable": "false"}
    assert "services/other-hms" in str(info.value) and "regional endpoint" in str(info.value)


def test_api_outage_is_retried_then_bounded(
    fake_api: FakeMetastoreApi, seeded_hive_metastore: SeededMetastore
) -> None:
    fake_api.failures = 2
    with dataproc(fake_api) as conn:
        assert seeded_hive_metastore.db in conn.list_namespaces()
        assert conn.call_counts["GetService"] == 3
    fake_api.failures = 10
    conn = dataproc(fake_api, api_max_attempts=2)
    with pytest.raises(UnavailableError) as info:
        conn.list_namespaces()
    assert info.value.retryable and "2 attempt(s)" in str(info.value)
    fake_api.failures = 0


def test_inactive_or_grpc_services_are_refused(fake_api: FakeMetastoreApi) -> None:
    fake_api.state = "CREATING"
    with pytest.raises(UnavailableError, match="CREATING"):
        dataproc(fake_api).list_namespaces()
    fake_api.state, fake_api.protocol = "ACTIVE", "GRPC"
    with pytest.raises(NotSupportedError, match="gRPC"):
        dataproc(fake_api).list_namespaces()


def test_service_account_key_file_gets_a_token_and_is_never_printed(
    fake_api: FakeMetastoreApi, seeded_hive_metastore: SeededMetastore, tmp_path: Path
) -> None:
    import io

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_file = tmp_path / "sa.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": f"floe@{PROJECT}.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{fake_api.endpoint}/token",
            }
        )
    )
    email = f"floe@{PROJECT}.iam.gserviceaccount.com"
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def signed_by_the_key(bearer: str) -> bool:
        """The client signs its own JWT with the key (self-signed JWT access) or got our token."""
        from google.auth import jwt

        if bearer == "ya29.floe-test-token":
            return True
        try:
            claims = jwt.decode(bearer, certs=public, verify=True, audience=None)
        except Exception:
            return False
        return bool(claims["iss"] == email)

    fake_api.token = "ya29.floe-test-token"
    fake_api.verify_bearer = signed_by_the_key
    stream = io.StringIO()
    options = {
        "project": PROJECT,
        "location": LOCATION,
        "service": SERVICE,
        "api_endpoint": fake_api.endpoint,
        "key_file": str(key_file),
    }
    conn = connect_metastore("lake", "dataproc", options, environ={}, debug=True, stream=stream)
    assert seeded_hive_metastore.db in conn.list_namespaces()
    assert "auth = service_account (key_file)" in stream.getvalue()
    with pytest.raises(AuthenticationError, match="metastore.services.get"):
        dataproc(fake_api).list_namespaces()  # anonymous: no bearer token
    secret_json = key_file.read_text()
    stream = io.StringIO()
    conn = connect_metastore(
        "lake",
        "dataproc",
        {**{k: v for k, v in options.items() if k != "key_file"}, "key_json": secret_json},
        environ={},
        debug=True,
        stream=stream,
    )
    assert "BEGIN PRIVATE KEY" not in stream.getvalue() and "config.key_json = ***" in stream.getvalue()
    assert seeded_hive_metastore.db in conn.list_namespaces()


# --- real GCP (opt-in) -----------------------------------------------------------------------------


def real_gcp_settings(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    present = {name: environ[name] for name in GCP_ENV if environ.get(name)}
    if not present:
        pytest.skip(f"real GCP lane: set {', '.join(GCP_ENV)} (and ADC or GOOGLE_APPLICATION_CREDENTIALS)")
    missing = [name for name in GCP_ENV if name not in present]
    if missing:
        pytest.fail(
            f"real GCP Dataproc lane is half configured; missing: {', '.join(missing)}", pytrace=False
        )
    return present


def test_real_gcp_lane_skips_when_unset_and_fails_fast_when_half_set() -> None:
    with pytest.raises(pytest.skip.Exception):
        real_gcp_settings({})
    with pytest.raises(pytest.fail.Exception) as failed:
        real_gcp_settings({"FLOE_TEST_GCP_PROJECT": "p"})
    assert "missing: FLOE_TEST_GCP_LOCATION, FLOE_TEST_GCP_SERVICE" in str(failed.value)


def test_real_gcp_dataproc() -> None:
    settings = real_gcp_settings(os.environ)
    conn = connect_metastore(
        "real",
        "dataproc",
        {
            "project": settings["FLOE_TEST_GCP_PROJECT"],
            "location": settings["FLOE_TEST_GCP_LOCATION"],
            "service": settings["FLOE_TEST_GCP_SERVICE"],
        },
        environ={},
    )
    namespaces = conn.list_namespaces()
    assert namespaces and isinstance(conn.list_tables(namespaces[0]), list)
