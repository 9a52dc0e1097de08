"""One check for every endpoint override (plugins/base.py ``http_endpoint``), as each store and
catalog config applies it."""

from __future__ import annotations

import pytest

from floe_dagster.plugins.aws import aws_url
from floe_dagster.plugins.base import http_endpoint
from floe_dagster.plugins.gcs_warehouse import gcs_endpoint


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("http://127.0.0.1:9000/", "http://127.0.0.1:9000"),
        ("https://oss-cn-hangzhou.aliyuncs.com", "https://oss-cn-hangzhou.aliyuncs.com"),
        ("http://127.0.0.1:10000/devstoreaccount1/", "http://127.0.0.1:10000/devstoreaccount1"),
    ],
)
def test_an_http_url_is_kept_without_its_trailing_slash(value: str | None, expected: str | None) -> None:
    assert http_endpoint(value, "http://x") == expected
    assert aws_url(value) == expected and gcs_endpoint(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("127.0.0.1:9000", "must be an http(s) URL such as http://example:1"),
        ("ftp://host", "must be an http(s) URL such as http://example:1"),
        ("http://", "must be an http(s) URL such as http://example:1"),
        ("http://user:CANARY-endpoint@host:9000", "must not carry credentials"),
    ],
)
def test_a_bad_endpoint_is_refused_saying_what_is_wanted(value: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        http_endpoint(value, "http://example:1")
    assert str(raised.value) == message
    assert "CANARY" not in str(raised.value)


def test_a_query_is_refused_where_the_store_says_where_it_belongs() -> None:
    with pytest.raises(ValueError, match=r"or a query \(put a SAS in sas_token\)"):
        http_endpoint("http://127.0.0.1:10000/acct?sv=2024&sig=x", "http://e", "put a SAS in sas_token")
    assert http_endpoint("http://127.0.0.1:9000/?x=1", "http://e") == "http://127.0.0.1:9000/?x=1"
