"""Small things a new user trips over: a broken reference reported together with the schema
errors, did-you-mean for unknown keys, and no Dagster warning about APIs floe calls on purpose."""

from __future__ import annotations

import shutil
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import AssetKey, BetaWarning, SupersessionWarning

from floe_dagster.cli import main
from tests.helpers import REPO


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    return tmp_path / "manifests"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {path}"
    path.write_text(text.replace(old, new))


def line_of(path: Path, text: str) -> int:
    [index] = [i for i, line in enumerate(path.read_text().splitlines()) if line.strip() == text]
    return index + 1


def validate(manifest: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["validate", str(manifest)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err.strip().splitlines()


def test_a_broken_catalog_reference_is_reported_with_the_schema_errors(
    manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    product = manifests / "manifest.yaml"
    edit(product, "  approved: [duckdb, duckdb_analytics]", "  approvd: [duckdb, duckdb_analytics]")
    edit(
        product,
        "transforms:\n  dbt_project: ../dbt_project\n  catalog: lakehouse",
        "transforms:\n  dbt_project: ../dbt_project\n  catalog: lakehous",
    )
    lines = validate(product, capsys)
    shown = str(product.relative_to(Path.cwd())) if product.is_relative_to(Path.cwd()) else str(product)
    catalog_line = line_of(product, "catalog: lakehous")
    approved_line = line_of(product, "approvd: [duckdb, duckdb_analytics]")
    assert any(
        line.startswith(f"{shown}:{approved_line}:3: computes.approvd: unknown key") for line in lines
    ), lines
    assert (
        f"{shown}:{catalog_line}:12: transforms.catalog: unknown catalog 'lakehous'"
        " (did you mean 'lakehouse'?); defined catalogs: [lakehouse]"
    ) in lines, lines
    assert len(lines) == 2, lines


def test_a_broken_reference_in_a_metastore_is_reported_with_a_schema_error_of_the_merged_chain(
    manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The layer loads, the merged manifest does not (no metadata.name anywhere)."""
    product = manifests / "manifest.yaml"
    edit(product, "  name: jaffle-lakehouse\n", "")
    edit(product, "      catalog: lakehouse\n", "      catalog: lakehous\n")
    lines = validate(product, capsys)
    assert any("metadata.name" in line and "required key 'name' is missing" in line for line in lines), lines
    assert any(
        "metastores.lakehouse.config.catalog: unknown catalog 'lakehous' (did you mean 'lakehouse'?)" in line
        for line in lines
    ), lines


def test_an_unknown_key_gets_a_did_you_mean(manifests: Path, capsys: pytest.CaptureFixture[str]) -> None:
    product = manifests / "manifest.yaml"
    edit(product, "  assignments:", "  asignments:")
    [line] = validate(product, capsys)
    assert line.endswith(
        "transforms.asignments: unknown key 'asignments' in transforms (did you mean 'assignments'?);"
        " remove it or check its spelling"
    ), line


def test_an_unknown_plugin_config_key_gets_a_did_you_mean(
    manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    product = manifests / "manifest.yaml"
    edit(product, "          threads: 4\n", "          thread: 4\n")
    lines = validate(product, capsys)
    assert any(
        "unknown key 'thread'" in line and "(did you mean 'threads'?)" in line for line in lines
    ), lines


def test_an_unknown_key_far_from_any_known_one_gets_no_guess(
    manifests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    product = manifests / "manifest.yaml"
    edit(product, "  assignments:", "  zzz: 1\n  assignments:")
    [line] = validate(product, capsys)
    assert line.endswith("unknown key 'zzz' in transforms; remove it or check its spelling"), line


def test_freshness_checks_for_observed_tables_raise_no_supersession_warning() -> None:
    from floe_dagster.dagster_stage.freshness import source_freshness_checks

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checks, sensors = source_freshness_checks(
            {AssetKey(["lakehouse", "raw", "orders"]): (timedelta(hours=36), timedelta(hours=24))}
        )
    assert checks and sensors
    assert [str(w.message) for w in caught if issubclass(w.category, SupersessionWarning)] == []


def test_other_supersession_warnings_still_reach_the_user() -> None:
    """The filter is precise: only the named functions are silenced, and only inside the block."""
    from floe_dagster.dagster_stage.dagster_warnings import calling_on_purpose

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with calling_on_purpose(SupersessionWarning, "build_last_update_freshness_checks"):
            warnings.warn("Function `something_else` is superseded", SupersessionWarning, stacklevel=1)
            warnings.warn(
                "Function `build_last_update_freshness_checks` is superseded",
                SupersessionWarning,
                stacklevel=1,
            )
        warnings.warn(
            "Function `build_last_update_freshness_checks` is superseded", SupersessionWarning, stacklevel=1
        )
    assert [str(w.message) for w in caught] == [
        "Function `something_else` is superseded",
        "Function `build_last_update_freshness_checks` is superseded",
    ]


def test_loading_the_demo_definitions_raises_no_beta_or_supersession_warning(parsed_demo: Path) -> None:
    from floe_dagster import build_definitions

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_definitions(parsed_demo / "manifests" / "manifest.yaml")
    assert defs.resolve_asset_graph().get_all_asset_keys()
    noisy = [str(w.message) for w in caught if issubclass(w.category, BetaWarning | SupersessionWarning)]
    assert noisy == []
