"""The manifest's change_feed options, the S3 queue settings and the sensor cursor's feed state."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from floe_dagster.dagster_stage.sensors import decode_cursor, decode_feed_state, encode_cursor
from floe_dagster.manifest.errors import ManifestError
from floe_dagster.manifest.loader import load_manifest
from floe_dagster.metastores.feed_tick import FeedState
from floe_dagster.metastores.s3 import S3MetastoreConfig
from tests.helpers import VALID


def _manifest(tmp_path: Path, change_feed: str) -> Path:
    text = VALID.replace(
        "      catalog: lakehouse\ntransforms:", f"      catalog: lakehouse\n{change_feed}transforms:"
    )
    (tmp_path / "dbt").mkdir(exist_ok=True)
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: t\nprofile: t\n")
    path = tmp_path / "manifest.yaml"
    path.write_text(text)
    return path


def test_change_feed_defaults_and_overrides(tmp_path: Path) -> None:
    default = load_manifest(_manifest(tmp_path, "")).manifest.metastores["lakehouse"].change_feed
    assert (default.enabled, default.reconcile_interval_seconds, default.page_size) == (True, 3600, 1000)
    snippet = "    change_feed: {enabled: false, reconcile_interval_seconds: 600, page_size: 50}\n"
    chosen = load_manifest(_manifest(tmp_path, snippet)).manifest.metastores["lakehouse"].change_feed
    assert (chosen.enabled, chosen.reconcile_interval_seconds, chosen.page_size) == (False, 600, 50)


@pytest.mark.parametrize(
    ("snippet", "words"),
    [
        ("    change_feed: {reconcile_interval_seconds: 10}\n", ("reconcile_interval_seconds", "60")),
        ("    change_feed: {page_size: 0}\n", ("page_size", "1")),
        ("    change_feed: {reconcile_every: 60}\n", ("reconcile_every",)),
    ],
)
def test_a_bad_change_feed_option_is_a_manifest_error_with_its_position(
    tmp_path: Path, snippet: str, words: tuple[str, ...]
) -> None:
    path = _manifest(tmp_path, snippet)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    text = str(caught.value)
    line = next(n for n, row in enumerate(path.read_text().splitlines(), 1) if "change_feed" in row)
    assert f"manifest.yaml:{line}:" in text
    assert all(word in text for word in words), text
    assert "Traceback" not in text


def test_s3_queue_settings_are_checked() -> None:
    base = {"bucket": "lake-raw", "region": "eu-west-1"}
    config = S3MetastoreConfig.model_validate({**base, "notification_queue_url": "https://sqs.eu-west-1/1/q"})
    assert config.notification_visibility_timeout_s == 300 and config.sqs_endpoint is None
    with pytest.raises(ValidationError, match="sqs_endpoint"):
        S3MetastoreConfig.model_validate({**base, "sqs_endpoint": "ftp://queue"})
    with pytest.raises(ValidationError, match="notification_visibility_timeout_s"):
        S3MetastoreConfig.model_validate({**base, "notification_visibility_timeout_s": 0})


def test_the_cursor_keeps_the_feed_state_and_older_cursors_still_read() -> None:
    state = FeedState(position="42", reconciled_at=1000.5, acks=["r1"], fallback="notifications off")
    cursor = encode_cursor({"raw.a": "v1"}, state)
    assert decode_cursor(cursor) == {"raw.a": "v1"}
    assert decode_feed_state(cursor) == state
    older = encode_cursor({"raw.a": "v1"})  # a cursor written before change feeds: a first tick
    assert decode_cursor(older) == {"raw.a": "v1"} and decode_feed_state(older) == FeedState()
    for foreign in (None, "", "not json", '{"v": 9, "f": {"p": "1"}}', '{"v": 1, "f": [1]}'):
        assert decode_feed_state(foreign) == FeedState()
