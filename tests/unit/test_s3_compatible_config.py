"""S3-compatible stores in the ``s3`` metastore config: any region name the store uses with its
endpoint, ``addressing_style: path | virtual``, and what that makes of the boto3 client, the
PyIceberg FileIO properties and the DuckDB secret (pure: no network)."""

from __future__ import annotations

from typing import Any

import pytest

from floe_dagster.core.errors import InvalidFieldError
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.plugins.factory import connect_metastore, metastore_config

# The documented examples (docs/object-stores.md): store -> (region, endpoint, addressing_style)
STORES = {
    "minio": ("us-east-1", "http://127.0.0.1:9000", "path"),
    "oss": ("cn-hangzhou", "https://oss-cn-hangzhou.aliyuncs.com", "virtual"),
    "cos": ("ap-guangzhou", "https://cos.ap-guangzhou.myqcloud.com", "virtual"),
    "r2": ("auto", "https://0123456789abcdef.r2.cloudflarestorage.com", "path"),
}


def s3(**options: Any) -> S3MetastoreConnector:
    made = connect_metastore(
        "lake",
        "s3",
        {"bucket": "my-bucket", "access_key_id": "AKID", "secret_access_key": "x" * 12, **options},
        environ={},
    )
    assert isinstance(made, S3MetastoreConnector)
    return made


@pytest.mark.parametrize("store", sorted(STORES))
def test_each_store_s_region_endpoint_and_addressing_are_accepted(store: str) -> None:
    region, endpoint, style = STORES[store]
    conn = s3(region=region, endpoint=endpoint, addressing_style=style)
    assert conn.config.region == region
    assert conn.config.url_style == style
    client = conn.client()  # botocore validates the region name and builds the request URL
    assert client.meta.region_name == region
    assert client.meta.config.s3["addressing_style"] == style
    url = client.generate_presigned_url("get_object", Params={"Bucket": "my-bucket", "Key": "k.parquet"})
    host = endpoint.split("://", 1)[1]
    if style == "virtual":
        assert url.startswith(f"{endpoint.split('://')[0]}://my-bucket.{host}/k.parquet")
    else:
        assert url.startswith(f"{endpoint}/my-bucket/k.parquet")


def test_an_endpoint_defaults_to_path_style_and_aws_to_the_sdk_s_choice() -> None:
    assert s3(region="us-east-1", endpoint="http://127.0.0.1:9000").config.url_style == "path"
    aws = s3(region="eu-west-1")
    assert aws.config.url_style == "auto"
    assert aws.client().meta.config.s3["addressing_style"] == "auto"


def test_a_store_s_own_region_name_without_its_endpoint_says_what_to_set() -> None:
    with pytest.raises(InvalidFieldError) as caught:
        metastore_config("lake", "s3", {"bucket": "my-bucket", "region": "cn-hangzhou"}, environ={})
    assert caught.value.field == "region"
    text = str(caught.value)
    assert "'cn-hangzhou' is not an AWS region name" in text and "needs that store's endpoint" in text


@pytest.mark.parametrize("region", ["Europe", "eu_west_1", "cn hangzhou", "-auto"])
def test_a_region_that_is_no_region_name_is_refused(region: str) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        metastore_config(
            "lake", "s3", {"bucket": "b-1", "region": region, "endpoint": "http://127.0.0.1:9"}, environ={}
        )
    assert caught.value.field == "region" and "lowercase letters, digits and hyphens" in str(caught.value)


def test_addressing_style_takes_path_or_virtual_only() -> None:
    with pytest.raises(InvalidFieldError) as caught:
        metastore_config(
            "lake", "s3", {"bucket": "b-1", "region": "auto", "addressing_style": "vhost"}, environ={}
        )
    assert caught.value.field == "addressing_style" and "'path' or 'virtual'" in str(caught.value)


@pytest.mark.parametrize(("style", "duckdb_style"), [("virtual", "'vhost'"), ("path", "'path'")])
def test_duckdb_secret_and_file_io_follow_the_addressing_style(style: str, duckdb_style: str) -> None:
    region, endpoint, _ = STORES["oss"]
    conn = s3(region=region, endpoint=endpoint, addressing_style=style)
    sql = conn.credentials.duckdb_secret_sql("s", scopes=["s3://my-bucket"])  # type: ignore[union-attr]
    assert f"URL_STYLE {duckdb_style}" in sql
    assert "ENDPOINT 'oss-cn-hangzhou.aliyuncs.com'" in sql and "USE_SSL true" in sql
    assert "REGION 'cn-hangzhou'" in sql
    props = conn.credentials.storage_properties()  # type: ignore[union-attr]
    assert props.get("s3.force-virtual-addressing") == ("true" if style == "virtual" else None)


def test_pyiceberg_reads_the_virtual_addressing_property_we_set() -> None:
    from pyiceberg.io import S3_FORCE_VIRTUAL_ADDRESSING

    from floe_dagster.plugins.aws import S3_FORCE_VIRTUAL_ADDRESSING as OURS

    assert OURS == S3_FORCE_VIRTUAL_ADDRESSING
