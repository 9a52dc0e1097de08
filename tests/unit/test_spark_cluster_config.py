"""The Spark compute's cluster and metastore settings: profiles and bad input (no Spark started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from floe_dagster.computes.spark import SparkComputePlugin, SparkConfig, output_warehouse
from floe_dagster.plugins import ConfigurationError, DbtProfileContext

HMS = ("hms", "thrift://127.0.0.1:9083")


def context(tmp_path: Path, hive: tuple[tuple[str, str], ...] = ()) -> DbtProfileContext:
    return DbtProfileContext(
        "spark", str(tmp_path / "manifest.yaml"), "dev", str(tmp_path / "state"), (), None, "small", hive
    )


def params(
    config: dict[str, object], tmp_path: Path, hive: tuple[tuple[str, str], ...] = ()
) -> dict[str, str]:
    output = SparkComputePlugin().generate_dbt_profile(
        SparkConfig.model_validate(config), context(tmp_path, hive)
    )
    return dict(output["server_side_parameters"])


def test_a_cluster_master_goes_to_the_session_and_names_the_application(tmp_path: Path) -> None:
    got = params({"master": "spark://10.0.0.5:7077,10.0.0.6:7077"}, tmp_path)
    assert got["spark.master"] == "spark://10.0.0.5:7077,10.0.0.6:7077"
    assert got["spark.app.name"] == "floe-spark"
    assert got["spark.sql.catalogImplementation"] == "in-memory"


@pytest.mark.parametrize(
    "master", ["yarn", "spark://host", "k8s://https://api:6443", "local[two]", "spark://a:1/x"]
)
def test_a_master_floe_cannot_run_a_session_on_is_refused_with_the_accepted_forms(master: str) -> None:
    with pytest.raises(ValidationError) as info:
        SparkConfig.model_validate({"master": master})
    text = str(info.value)
    assert f"master '{master}'" in text and "spark://host:port" in text and "local[N]" in text


def test_the_manifests_hive_metastore_is_the_sessions_catalog(tmp_path: Path) -> None:
    got = params({"method": "session"}, tmp_path, (HMS,))
    assert got["spark.sql.catalogImplementation"] == "hive"
    assert got["spark.hadoop.hive.metastore.uris"] == HMS[1]
    two = (HMS, ("other", "thrift://10.0.0.9:9083"))
    assert params({"metastore": "other"}, tmp_path, two)["spark.hadoop.hive.metastore.uris"] == two[1][1]


def test_several_hive_metastores_need_metastore_and_an_unknown_name_is_refused(tmp_path: Path) -> None:
    two = (HMS, ("other", "thrift://10.0.0.9:9083"))
    with pytest.raises(ConfigurationError) as info:
        params({}, tmp_path, two)
    assert "several Hive Metastores (hms, other)" in str(info.value) and "config.metastore" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        params({"metastore": "nope"}, tmp_path, (HMS,))
    assert "metastore 'nope' is not a hive metastore" in str(info.value) and "['hms']" in str(info.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"method": "thrift", "host": "h", "metastore": "hms"}, "metastore applies to method 'session' only"),
        ({"method": "session", "shared_warehouse": "/x"}, "shared_warehouse applies to method 'thrift' only"),
    ],
)
def test_settings_of_another_method_are_refused(raw: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        SparkConfig.model_validate(raw)


def test_where_outputs_are_committed_from(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    session = SparkConfig.model_validate({})
    assert output_warehouse(session, ctx) == tmp_path / "state" / "spark" / "spark" / "warehouse"
    shared = SparkConfig.model_validate(
        {"method": "thrift", "host": "h", "shared_warehouse": str(tmp_path / "w")}
    )
    assert output_warehouse(shared, ctx) == tmp_path / "w"
    assert output_warehouse(SparkConfig.model_validate({"method": "thrift", "host": "h"}), ctx) is None
    assert SparkComputePlugin().max_concurrency(shared) == 1


def test_profile_context_lists_the_manifests_hive_metastores_without_sasl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from floe_dagster.manifest.loader import load_manifest
    from floe_dagster.transforms.profiles import profile_context
    from tests.helpers import copy_demo_project

    monkeypatch.setenv("FLOE_TEST_HMS_PASSWORD", "canary-hms-Pw-77")
    root = copy_demo_project(tmp_path / "project")
    manifest = root / "manifests" / "manifest.yaml"
    block = (
        "metastores:\n"
        "  hms:\n"
        "    type: hive\n"
        "    config: {uri: 'thrift://127.0.0.1:9083'}\n"
        "  guarded:\n"
        "    type: hive\n"
        "    config: {uri: 'thrift://127.0.0.1:9084', auth: plain, user: etl,"
        " password: '${env:FLOE_TEST_HMS_PASSWORD}'}\n"
    )
    manifest.write_text(manifest.read_text().replace("metastores:\n", block, 1))
    ctx = profile_context(load_manifest(manifest), "duckdb")
    assert ctx.hive_metastores == (("hms", "thrift://127.0.0.1:9083"),)
    assert "canary-hms-Pw-77" not in repr(ctx)
