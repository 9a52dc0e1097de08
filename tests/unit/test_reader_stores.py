"""Which store module opens a location for floe's Python readers (ORC datasets, the Delta log,
hudi-rs), and what each makes of a metastore's storage properties (pure: no network).

The filesystems are checked through PyArrow's and gcsfs's own view of their arguments (a PyArrow
filesystem's pickling arguments, gcsfs's attributes), not through floe's."""

from __future__ import annotations

import json
from typing import Any

import pyarrow.fs as pafs
import pytest

from floe_dagster.core.errors import NotSupportedError
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.readers.formats import storage_properties
from floe_dagster.readers.storage import filesystem, object_store_options, path_in_store, uri
from floe_dagster.readers.stores import BY_SCHEME, STORES, azure, gcs, s3

CANARY = "canary-secret-4f1d"


def s3_storage(**config: Any) -> dict[str, str]:
    options = {
        "bucket": "lake",
        "region": "cn-hangzhou",
        "access_key_id": "AKIA",
        "secret_access_key": CANARY,
    }
    return storage_properties(connect_metastore("oss", "s3", {**options, **config}, environ={}).credentials)


def gcs_storage(**config: Any) -> dict[str, str]:
    options = {"bucket": "lake", **config}
    return storage_properties(connect_metastore("gcs", "gcs", options, environ={}).credentials)


def pyarrow_arguments(fs: Any) -> dict[str, Any]:
    """The arguments PyArrow would rebuild ``fs`` from (its own record of them)."""
    reduced = fs.__reduce__()[1]
    return dict(reduced[0]) if reduced and isinstance(reduced[0], dict) else {}


def test_every_scheme_belongs_to_exactly_one_store() -> None:
    schemes = [scheme for store in STORES for scheme in store.schemes]
    assert len(schemes) == len(set(schemes)) == len(BY_SCHEME)
    assert {BY_SCHEME[x] for x in ("s3", "s3a", "s3n", "oss", "cosn")} == {s3.STORE}
    assert {BY_SCHEME[x] for x in ("az", "abfss", "wasbs")} == {azure.STORE}
    assert {BY_SCHEME[x] for x in ("gs", "gcs")} == {gcs.STORE}


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3a://lake/sales/", "s3://lake/sales"),
        ("oss://lake/sales", "s3://lake/sales"),
        ("cosn://lake-1250000000/sales", "s3://lake-1250000000/sales"),
        ("gcs://lake/sales/", "gs://lake/sales"),
        ("abfss://lake@acct.dfs.core.windows.net/sales", "abfss://lake@acct.dfs.core.windows.net/sales"),
        ("file:///data/sales/", "/data/sales"),
    ],
)
def test_the_rust_readers_get_a_scheme_they_know(location: str, expected: str) -> None:
    assert uri(location) == expected


def test_an_oss_location_opens_the_stores_endpoint_with_virtual_hosted_requests() -> None:
    storage = s3_storage(endpoint="https://oss-cn-hangzhou.aliyuncs.com", addressing_style="virtual")
    fs, path = filesystem("oss://lake/sales/2026/", storage, "oss.sales")
    arguments = pyarrow_arguments(fs)
    assert isinstance(fs, pafs.S3FileSystem) and path == "lake/sales/2026"
    assert arguments["endpoint_override"] == "oss-cn-hangzhou.aliyuncs.com"
    assert arguments["scheme"] == "https" and arguments["region"] == "cn-hangzhou"
    assert arguments["force_virtual_addressing"] is True
    options = object_store_options("oss://lake/sales", storage)
    assert options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] == "true"
    assert options["AWS_ENDPOINT_URL"] == "https://oss-cn-hangzhou.aliyuncs.com"
    assert options["AWS_SECRET_ACCESS_KEY"] == CANARY


def test_a_path_style_endpoint_stays_path_style() -> None:
    storage = s3_storage(endpoint="http://127.0.0.1:9000", region="us-east-1")
    fs, _ = filesystem("s3a://lake/sales", storage)
    assert pyarrow_arguments(fs)["force_virtual_addressing"] is False
    assert pyarrow_arguments(fs)["scheme"] == "http"
    assert object_store_options("s3a://lake/sales", storage)["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] == "false"


def test_a_gcs_location_opens_gcsfs_at_the_sources_endpoint_and_project() -> None:
    storage = gcs_storage(endpoint="http://127.0.0.1:9023", project="floe-test", anonymous=True)
    fs, path = filesystem("gs://lake/sales/eu/", storage, "gcs.sales")
    assert isinstance(fs, pafs.PyFileSystem) and path == "lake/sales/eu"
    opened = fs.handler.fs
    assert type(opened).__module__ == "gcsfs.core"
    assert opened._endpoint == "http://127.0.0.1:9023" and opened.project == "floe-test"
    assert opened.credentials.method == "anon"


def test_a_service_account_key_goes_to_gcsfs_and_to_the_rust_readers() -> None:
    key = {"type": "service_account", "client_email": "a@b.iam.gserviceaccount.com", "private_key": CANARY}
    storage = gcs_storage(key_json=json.dumps(key))
    assert json.loads(storage["gcs.floe.service-account-json"]) == key
    assert object_store_options("gs://lake/t", storage) == {"google_service_account_key": json.dumps(key)}
    file_storage = gcs_storage(key_file="~/keys/reader.json")
    assert file_storage["gcs.floe.service-account-file"].endswith("/keys/reader.json")
    assert not file_storage["gcs.floe.service-account-file"].startswith("~")
    assert object_store_options("gs://lake/t", file_storage) == {
        "google_service_account": file_storage["gcs.floe.service-account-file"]
    }


def test_application_default_credentials_add_no_credential_property() -> None:
    assert not any(key.startswith("gcs.floe.") for key in gcs_storage())


@pytest.mark.parametrize("location", ["hdfs://nn:8020/warehouse/sales", "ofs://om/vol/bucket/sales"])
def test_an_unknown_scheme_is_refused_naming_the_table_the_scheme_and_what_is_readable(location: str) -> None:
    scheme = location.split(":", 1)[0]
    for call in (
        lambda: filesystem(location, {}, "hive.sales"),
        lambda: object_store_options(location, {}, "hive.sales"),
    ):
        with pytest.raises(NotSupportedError) as refused:
            call()
        message = str(refused.value)
        assert "hive.sales" in message and f"{scheme}://" in message
        assert "gs://" in message and "oss://" in message and "abfss://" in message


def test_a_session_token_goes_with_the_keys_and_no_keys_leave_the_default_chain() -> None:
    storage = {"s3.access-key-id": "ASIA", "s3.secret-access-key": CANARY, "s3.session-token": "tok"}
    arguments = pyarrow_arguments(filesystem("s3://lake/t", storage)[0])
    assert (arguments["access_key"], arguments["secret_key"], arguments["session_token"]) == (
        "ASIA",
        CANARY,
        "tok",
    )
    options = object_store_options("s3://lake/t", storage)
    assert (options["AWS_ACCESS_KEY_ID"], options["AWS_SESSION_TOKEN"]) == ("ASIA", "tok")
    assert not any(
        k.startswith("AWS_ACCESS") for k in object_store_options("s3://lake/t", {"s3.region": "x"})
    )


def test_the_path_inside_a_store_is_the_filesystems_without_making_one() -> None:
    storage = {"adls.account-name": "acct", "adls.account-key": CANARY}
    for location, storage_of in (
        ("abfss://lake@acct.dfs.core.windows.net/sales/ds=1/", storage),
        ("oss://lake/sales/ds=1/", {}),
        ("gs://lake/sales/ds=1/", {"gcs.floe.anonymous": "true", "gcs.project-id": "p"}),
        ("file:///data/sales/ds=1/", {}),
    ):
        assert path_in_store(location) == filesystem(location, storage_of)[1]
    with pytest.raises(NotSupportedError) as refused:
        path_in_store("hdfs://nn/warehouse/sales", "hive.sales")
    assert "hive.sales" in str(refused.value) and "hdfs://" in str(refused.value)
