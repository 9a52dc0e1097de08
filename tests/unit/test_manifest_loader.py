"""The manifest loader: positions, schema errors, plugin config errors, references."""

from __future__ import annotations

from pathlib import Path

import pytest

from floe_dagster.manifest import ManifestError, load_manifest
from floe_dagster.manifest.loader import check_references
from tests.helpers import VALID


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: t\nprofile: t\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(workdir: Path, text: str) -> Path:
    path = workdir / "manifest.yaml"
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    return [str(p) for p in info.value.problems]


def test_valid_manifest_loads_with_resolved_paths(workdir: Path) -> None:
    loaded = load_manifest(write(workdir, VALID))
    assert loaded.name == "test-platform"
    assert loaded.dbt_project_dir == (workdir / "dbt").resolve()
    catalog_config = loaded.plugin_config("catalogs", "lakehouse")
    assert catalog_config.uri == f"sqlite:///{(workdir / 'state' / 'catalog.db').resolve()}"  # type: ignore[attr-defined]
    assert catalog_config.warehouse == f"file://{(workdir / 'state' / 'warehouse').resolve()}"  # type: ignore[attr-defined]
    assert loaded.position("computes", "default").line == 13
    assert check_references(loaded) == []


def test_missing_file_names_the_path(workdir: Path) -> None:
    [problem] = problems_of(workdir / "nope.yaml")
    assert problem.startswith("nope.yaml:1:1: ")
    assert "not found" in problem and "manifest" in problem


def test_yaml_syntax_error_points_at_the_line(workdir: Path) -> None:
    broken = VALID.replace("  default: duckdb", "  default: [duckdb")
    [problem] = problems_of(write(workdir, broken))
    assert problem.startswith("manifest.yaml:14:")
    assert "YAML syntax error" in problem


def test_unknown_top_level_key_points_at_the_key(workdir: Path) -> None:
    [problem] = problems_of(write(workdir, VALID + "computez: {}\n"))
    assert problem == (
        "manifest.yaml:31:1: computez: unknown key 'computez' in the top level"
        " (did you mean 'computes'?); remove it or check its spelling"
    )


def test_wrong_type_points_at_the_value(workdir: Path) -> None:
    [problem] = problems_of(write(workdir, VALID.replace("threads: 2", "threads: many")))
    assert problem.startswith("manifest.yaml:19:18: computes.targets.duckdb.config.threads: ")
    assert "'many'" in problem


def test_unknown_plugin_type_lists_installed_choices(workdir: Path) -> None:
    [problem] = problems_of(write(workdir, VALID.replace("type: duckdb", "type: quackdb")))
    assert problem.startswith(
        "manifest.yaml:16:13: computes.targets.duckdb.type: unknown compute type 'quackdb'"
        " (did you mean 'duckdb'?); installed: ["
    )
    installed = problem.split("installed: [", 1)[1].split("]", 1)[0].split(", ")
    assert {"duckdb", "postgres", "spark"} <= set(installed) and installed == sorted(installed)


def test_default_compute_must_be_approved(workdir: Path) -> None:
    text = VALID.replace("  default: duckdb", "  default: spark")
    [problem] = problems_of(write(workdir, text))
    assert problem == (
        "manifest.yaml:13:12: computes.default: 'spark' is not in computes.approved [duckdb];"
        " approve it or pick one of those"
    )


def test_assignment_to_unknown_compute_names_rule_level_and_choices(workdir: Path) -> None:
    [problem] = problems_of(write(workdir, VALID.replace("      compute: duckdb", "      compute: trino")))
    # the dbt project is not parsed (and a manifest load parses nothing), so no models are named
    assert problem == (
        "manifest.yaml:30:16: transforms.assignments[0].compute: rule 1 ('tag:marts') assigns compute"
        " 'trino', which is not approved at level product; allowed: [duckdb]"
    )


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (
            "approved: [duckdb]",
            "approved: 5",
            "manifest.yaml:12:13: computes.approved: Input should be a valid list (got 5); expected a list"
            " of strings, e.g. approved: [duckdb, spark]",
        ),
        (
            VALID[VALID.index("computes:") : VALID.index("metastores:")],
            "computes: duckdb\n",
            "manifest.yaml:11:11: computes: Input should be a mapping (got 'duckdb'); expected a mapping"
            " with the keys approved, default, targets, e.g. computes: {approved: [duckdb, spark],"
            " default: duckdb}",
        ),
        (
            "approved: [duckdb]",
            "approved: [duckdb, [spark]]",
            "manifest.yaml:12:22: computes.approved[1]: Input should be a valid string; expected a string,"
            " e.g. duckdb",
        ),
        (
            "  lakehouse:\n    type: sql",
            "  lakehouse:\n    type: [sql]",
            "manifest.yaml:7:11: catalogs.lakehouse.type: Input should be a valid string; expected a string,"
            " e.g. type: sql",
        ),
        (
            "      catalog: lakehouse\ntransforms:",
            "      catalog: lakehouse\n    batch_size: lots\ntransforms:",
            "manifest.yaml:25:17: metastores.lakehouse.batch_size: Input should be a valid integer, unable to"
            " parse string as an integer (got 'lots'); expected a whole number from 1 to 1000, e.g."
            " batch_size: 100",
        ),
        (
            "threads: 2",
            "threads: many",
            "manifest.yaml:19:18: computes.targets.duckdb.config.threads: Input should be a valid integer,"
            " unable to parse string as an integer (got 'many'); expected a whole number of at least 1,"
            " e.g. threads: 1",
        ),
    ],
    ids=["list", "mapping", "list item", "catalog type", "metastore field", "plugin config field"],
)
def test_a_wrong_type_says_what_is_expected_with_an_example(
    workdir: Path, old: str, new: str, line: str
) -> None:
    assert VALID.count(old) == 1
    assert problems_of(write(workdir, VALID.replace(old, new))) == [line]


def test_missing_dbt_project_is_reported_at_its_key(workdir: Path) -> None:
    [problem] = problems_of(write(workdir, VALID.replace("dbt_project: dbt", "dbt_project: nowhere")))
    assert problem.startswith("manifest.yaml:26:16: transforms.dbt_project: no dbt project at nowhere")
    assert "relative to the manifest file" in problem


def test_every_problem_is_reported_at_once(workdir: Path) -> None:
    text = VALID.replace("  default: duckdb", "  default: spark").replace(
        "dbt_project: dbt", "dbt_project: x"
    )
    problems = problems_of(write(workdir, text))
    assert len(problems) == 2


def test_plugin_config_errors_carry_plugin_field_positions(workdir: Path) -> None:
    text = VALID.replace("threads: 2", "threads: 0\n        memory_limit: lots")
    problems = problems_of(write(workdir, text))
    assert any(p.startswith("manifest.yaml:19:18: computes.targets.duckdb.config.threads:") for p in problems)
    assert any("memory_limit" in p and "'4GB' or '512MB'" in p for p in problems)


def test_metastore_must_reference_a_defined_catalog(workdir: Path) -> None:
    [problem] = problems_of(
        write(
            workdir, VALID.replace("      catalog: lakehouse\ntransforms", "      catalog: nope\ntransforms")
        )
    )
    assert problem.startswith(
        "manifest.yaml:24:16: metastores.lakehouse.config.catalog: unknown catalog 'nope'"
    )


def test_env_references_are_resolved_or_reported(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = VALID.replace("path: state/db.duckdb", "path: ${env:FLOE_TEST_DB}")
    monkeypatch.setenv("FLOE_TEST_DB", str(workdir / "from-env.duckdb"))
    loaded = load_manifest(write(workdir, text))
    assert loaded.plugin_config("computes", "duckdb").path == str(workdir / "from-env.duckdb")  # type: ignore[attr-defined]
    monkeypatch.delenv("FLOE_TEST_DB")
    [problem] = problems_of(write(workdir, text))
    assert "environment variable FLOE_TEST_DB is not set" in problem


def test_unsupported_api_version(workdir: Path) -> None:
    [problem] = problems_of(write(workdir, VALID.replace("floe.dev/v1", "floe.dev/v9")))
    assert problem.startswith("manifest.yaml:1:13: apiVersion: unsupported apiVersion (got 'floe.dev/v9')")
