"""Hostile manifests (issue 17, items 1-9): every one a positioned ManifestError, bounded in time
and memory, and no error or repr shows a credential or a raw control character."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from floe_dagster.core.errors import FloeError
from floe_dagster.dagster_stage.freshness import parse_duration
from floe_dagster.manifest import ManifestError, load_manifest
from floe_dagster.manifest.positions import MAX_ALIAS_NODES, MAX_MANIFEST_BYTES, MAX_NESTING_DEPTH, MAX_NODES

BASE = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata:
  name: t
catalogs:
  lakehouse:
    type: sql
    config:
      uri: sqlite:///state/catalog.db
      warehouse: state/warehouse
computes:
  approved: [duckdb]
  default: duckdb
  targets:
    duckdb:
      type: duckdb
metastores:
  lakehouse:
    type: iceberg
    config:
      catalog: lakehouse
transforms:
  dbt_project: dbt
"""
POSITIONED = re.compile(r"^manifest\.yaml:\d+:\d+: ", re.MULTILINE)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: t\nprofile: t\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def error_of(workdir: Path, text: str) -> str:
    (workdir / "manifest.yaml").write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(workdir / "manifest.yaml")
    message = str(caught.value)
    assert POSITIONED.match(message), message
    assert caught.value.problems and all(p.position.line >= 1 for p in caught.value.problems)
    return message


def _write(workdir: Path, text: str) -> Path:
    (workdir / "manifest.yaml").write_text(text)
    return workdir / "manifest.yaml"


def test_the_base_manifest_loads(workdir: Path) -> None:
    assert load_manifest(_write(workdir, BASE)).name == "t"


def test_a_duration_too_long_for_a_timedelta_is_a_positioned_error(workdir: Path) -> None:
    text = BASE.replace(
        "      catalog: lakehouse\n", "      catalog: lakehouse\n    freshness: {fail_after: 99999999999w}\n"
    )
    message = error_of(workdir, text)
    assert "manifest.yaml:22:29: metastores.lakehouse.freshness.fail_after" in message
    assert "longer than the longest duration" in message
    with pytest.raises(ValueError, match="longest duration"):
        parse_duration("9" * 400 + "s")  # a float infinity, not an OverflowError


def test_deep_nesting_stops_at_the_nesting_limit(workdir: Path) -> None:
    message = error_of(workdir, BASE + "state_dir: " + "[" * 250 + "]" * 250 + "\n")
    assert f"nesting limit ({MAX_NESTING_DEPTH} levels)" in message
    assert message.startswith(f"manifest.yaml:24:{11 + MAX_NESTING_DEPTH}:")


def test_a_local_tag_is_refused_at_its_position(workdir: Path) -> None:
    message = error_of(workdir, BASE + "state_dir: !foo [a]\n")
    assert message.startswith("manifest.yaml:24:12:") and "YAML tag '!foo' is not supported" in message


def test_extends_a_symlink_to_itself_names_the_loop(workdir: Path) -> None:
    (workdir / "self.yaml").symlink_to("self.yaml")
    message = error_of(workdir, "extends: self.yaml\n" + BASE)
    assert message.startswith("manifest.yaml:1:10: extends:") and "Symlink loop" in message


def test_an_alias_bomb_stops_at_the_alias_expansion_limit_quickly(workdir: Path) -> None:
    bomb = "x0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9)
    )  # 453 bytes, 9^9 items once expanded
    started = time.perf_counter()
    message = error_of(workdir, BASE + bomb)
    assert time.perf_counter() - started < 5  # was 208 s and 4.1 GB
    assert f"alias expansion limit ({MAX_ALIAS_NODES:,} nodes)" in message


def test_a_manifest_of_too_many_values_stops_at_the_node_limit(workdir: Path) -> None:
    started = time.perf_counter()
    message = error_of(workdir, BASE + "state_dir: [" + ",".join(["a"] * 100_000) + "]\n")
    assert time.perf_counter() - started < 20  # 100,000 values took 35 s before the limit
    assert f"node limit ({MAX_NODES:,} scalars, mappings and lists)" in message


def test_a_recursive_alias_is_refused(workdir: Path) -> None:
    message = error_of(workdir, BASE + "state_dir: &loop [a, *loop]\n")
    assert "inside its own anchor" in message


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(workdir: Path) -> None:
    started = time.perf_counter()
    message = error_of(workdir, BASE + "#" + "x" * (MAX_MANIFEST_BYTES + 10) + "\n")
    assert time.perf_counter() - started < 5  # a 50 MB comment took 135 s
    assert (
        message.startswith("manifest.yaml:1:1:") and f"size limit ({MAX_MANIFEST_BYTES:,} bytes)" in message
    )


def test_error_messages_shorten_long_values_and_escape_control_characters(workdir: Path) -> None:
    long = "v" * 1_000_000
    message = error_of(workdir, BASE.replace("  name: t\n", f"  name: t\n  level: {long}\n"))
    assert len(message) < 1000 and "more characters" in message
    message = error_of(workdir, BASE.replace("default: duckdb", 'default: "ab\\a\\ecd"'))
    assert "\x07" not in message and "\x1b" not in message
    assert "ab\\x07\\x1bcd" in message


def test_an_unexpected_exception_inside_loading_is_a_positioned_manifest_error(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_: object, **__: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("floe_dagster.manifest.loader.merge_chain", explode)
    message = error_of(workdir, BASE)
    assert message.startswith("manifest.yaml:1:1:") and "RecursionError" in message


def test_manifest_error_is_a_floe_error() -> None:
    assert issubclass(ManifestError, FloeError)


# --- no secret echoed back (items 8, 9) ---------------------------------------------------------

URIS = {
    "sql": ("uri", "postgresql+psycopg2://u:CANARY-S3CR3T@127.0.0.1:1/db"),
    "rest": ("uri", "http://u:CANARY-S3CR3T@127.0.0.1:1/api/catalog"),
    "hive": ("uri", "thrift://u:CANARY-S3CR3T@127.0.0.1:9083"),
}


@pytest.mark.parametrize("catalog_type", sorted(URIS))
def test_a_credential_in_a_catalog_uri_is_not_echoed(workdir: Path, catalog_type: str) -> None:
    key, uri = URIS[catalog_type]
    text = BASE.replace(
        "    type: sql\n    config:\n      uri: sqlite:///state/catalog.db\n",
        f"    type: {catalog_type}\n    config:\n      {key}: '{uri}'\n",
    )
    message = error_of(workdir, text)
    assert "CANARY-S3CR3T" not in message, message


def test_a_credential_in_an_s3_endpoint_is_not_echoed(workdir: Path) -> None:
    text = BASE.replace(
        "metastores:\n",
        "metastores:\n  raw:\n    type: s3\n    config:\n      bucket: b\n"
        "      endpoint_url: 'http://u:SECRET@127.0.0.1:1'\n",
    )
    message = error_of(workdir, text)
    assert "SECRET" not in message and "metastores.raw.config.endpoint_url" in message, message


@pytest.mark.parametrize(
    ("metastore_type", "key", "uri"),
    [
        ("hive", "uri", "thrift://u:CANARY-S3CR3T@127.0.0.1:9083"),
        ("glue", "endpoint", "http://u:CANARY-S3CR3T@127.0.0.1:1', region: 'eu-west-1"),
    ],
)
def test_a_credential_in_a_metastore_uri_is_not_echoed(
    workdir: Path, metastore_type: str, key: str, uri: str
) -> None:
    text = BASE.replace(
        "metastores:\n",
        f"metastores:\n  ext:\n    type: {metastore_type}\n    config: {{{key}: '{uri}'}}\n",
    )
    message = error_of(workdir, text)
    assert "CANARY-S3CR3T" not in message and f"metastores.ext.config.{key}" in message, message


def test_a_secret_of_the_wrong_type_is_described_not_shown(workdir: Path) -> None:
    text = BASE.replace(
        "      uri: sqlite:///state/catalog.db\n",
        "      uri: postgresql+psycopg2://h/db\n      password: 12345678\n",
    )
    message = error_of(workdir, text)
    assert "12345678" not in message and "catalogs.lakehouse.config.password" in message, message


def test_reprs_of_a_loaded_manifest_and_its_configs_mask_literal_secrets(workdir: Path) -> None:
    text = BASE.replace(
        "      uri: sqlite:///state/catalog.db\n",
        "      uri: postgresql+psycopg2://h/db\n      password: LITERAL-SECRET\n",
    ).replace(
        "computes:\n",
        "  rest:\n    type: rest\n    config:\n      uri: http://127.0.0.1:1/api/catalog\n"
        "      properties: {s3.secret-access-key: PROP-SECRET, s3.region: eu-west-1}\n"
        "computes:\n",
    )
    loaded = load_manifest(_write(workdir, text))
    for shown in (repr(loaded), repr(loaded.manifest), repr(loaded.plugin_configs), str(loaded.chain)):
        assert "LITERAL-SECRET" not in shown and "PROP-SECRET" not in shown
        assert "**********" in shown or shown == str(loaded.chain)
    rest = loaded.plugin_config("catalogs", "rest")
    assert "eu-west-1" in repr(rest)  # only secret-bearing keys are masked
    from floe_dagster.catalogs.rest import rest_catalog_properties

    assert rest_catalog_properties(rest)["s3.secret-access-key"] == "PROP-SECRET"  # in clear for PyIceberg


def test_a_credential_pasted_into_any_field_is_not_echoed(workdir: Path) -> None:
    """Found by the property test: an unknown plugin type's error quoted the type as written."""
    text = BASE.replace(
        "      type: duckdb\n", "      type: 'postgresql+psycopg2://u:CANARY-S3CR3T@h:1/db'\n"
    )
    message = error_of(workdir, text)
    assert "CANARY-S3CR3T" not in message and "postgresql+psycopg2://**********@h:1/db" in message


def test_an_extends_url_with_credentials_is_named_without_them(tmp_path: Path) -> None:
    """Found by the hostile-manifest property test: a path keeps one slash of ``scheme://``,
    so the masking of ``user:password@`` missed it and the password was echoed."""
    import shutil

    from tests.helpers import REPO

    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    domain = tmp_path / "manifests" / "domains" / "commerce.yaml"
    canary = "CANARY-extends-url-5b2e"
    domain.write_text(
        domain.read_text().replace(
            "extends: ../enterprise.yaml", f"extends: 'postgresql://u:{canary}@127.0.0.1:1/db'"
        )
    )
    with pytest.raises(ManifestError) as raised:
        load_manifest(tmp_path / "manifests" / "manifest.yaml")
    message = str(raised.value)
    assert canary not in message and canary not in repr(raised.value)
    assert "postgresql://**********@127.0.0.1:1/db" in message, message
    assert "extends takes a file path, not a URL" in message
    assert re.search(r"commerce\.yaml:\d+:\d+", message), message
