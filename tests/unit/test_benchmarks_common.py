"""The rules every benchmark relies on (benchmarks/_common.py): warm-up first and untimed, the
order of the sides swapped every other round, a disagreement between the sides exits non-zero,
and a fresh process's stages and output reach the parent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _common  # noqa: E402


def test_alternate_warms_up_each_side_then_swaps_the_order_every_round() -> None:
    calls: list[tuple[str, str]] = []

    def side(name: str):  # type: ignore[no-untyped-def]
        def run(label: str) -> _common.Sample:
            calls.append((label, name))
            return _common.Sample(wall=1.0, output=name)

        return run

    checked: list[str] = []
    results = _common.alternate(
        {"a": side("a"), "b": side("b")}, 3, check=lambda label, done: checked.append(label)
    )

    assert calls == [
        ("warm-up", "a"),
        ("warm-up", "b"),
        ("round-1", "a"),
        ("round-1", "b"),
        ("round-2", "b"),
        ("round-2", "a"),
        ("round-3", "a"),
        ("round-3", "b"),
    ]
    assert {name: len(runs) for name, runs in results.items()} == {"a": 3, "b": 3}  # warm-up untimed
    assert checked == ["warm-up", "round-1", "round-2", "round-3"]


def test_a_fast_wrong_answer_exits_non_zero_naming_the_difference(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _common.require_equal("models", "floe", {"m1", "m2"}, "dbt", {"m1", "m3"})

    assert exc.value.code == 3
    err = capsys.readouterr().err
    assert "models: 1 only in floe (e.g. ['m2']), 1 only in dbt (e.g. ['m3'])" in err
    _common.require_equal("rows", "a", {"t": "3 rows"}, "b", {"t": "3 rows"})  # equal: no exit


def test_run_process_reports_the_stages_and_output_of_a_fresh_process(tmp_path: Path) -> None:
    script = (
        f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); import _common;"
        " _common.report_to_parent({'work': 0.25}, {'rows': 7})"
    )
    sample = _common.run_process(
        [[sys.executable, "-c", script]], tmp_path, _common.clean_env(), tmp_path / "a.log"
    )

    assert sample.stages == {"work": 0.25}
    assert sample.output == {"rows": 7}
    assert sample.wall > 0


def test_run_process_exits_with_the_tail_of_a_failing_command(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; print('boom'); sys.exit(4)"]
    with pytest.raises(SystemExit) as exc:
        _common.run_process([command], tmp_path, _common.clean_env(), tmp_path / "b.log")

    assert "failed (exit 4)" in str(exc.value.code)
    assert "boom" in str(exc.value.code)


def test_the_floor_loads_the_source_specs_floe_built_with_the_same_metadata(tmp_path: Path) -> None:
    """load_scale.py's floor: floe's source specs, dumped from its repository and rebuilt in a
    fresh process, must be the same specs (else the floor would measure other assets)."""
    import dagster

    spec = dagster.AssetSpec(
        ["lake", "db", "t"],
        description="db.t in metastore 'lake'",
        group_name="lake",
        kinds={"parquet"},
        tags={"team": "a"},
        metadata={
            "floe/table": "db.t",
            "floe/partition_count": 3,
            "floe/location": dagster.MetadataValue.path("s3://b/db/t"),
            "floe/last_ddl_time": dagster.MetadataValue.timestamp(1_700_000_000.5),
            "dagster/column_schema": dagster.TableSchema(columns=[dagster.TableColumn("id", "bigint")]),
        },
    )

    @dagster.multi_observable_source_asset(specs=[spec])
    def observe(context):  # type: ignore[no-untyped-def]
        return None

    repository = dagster.Definitions(assets=[observe]).get_repository_def()
    _common.dump_source_specs(repository, tmp_path / "specs.json")
    [loaded] = _common.load_source_specs(str(tmp_path / "specs.json"))

    [built] = observe.specs
    for field in ("key", "description", "group_name", "tags", "kinds", "owners", "freshness_policy"):
        assert getattr(loaded, field) == getattr(built, field), field
    assert dict(loaded.metadata) == dict(built.metadata)
