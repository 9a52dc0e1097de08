"""The defs state file: what is written is read back; anything else is ignored (and re-listed)."""

from __future__ import annotations

from pathlib import Path

from floe_dagster.metastores.state import MetastoreState, SourcesState, TableRecord, read_state, save_state


def test_state_round_trips_and_an_unreadable_file_reads_as_none(tmp_path: Path) -> None:
    state = SourcesState(manifest="m", environment="dev")
    record: TableRecord = {
        "namespace": "raw",
        "name": "orders",
        "format": "parquet",
        "location": "s3://w/raw/orders",
        "columns": [["id", "bigint", None]],
        "partition_keys": [],
        "partition_count": None,
        "last_ddl_time": 1.5,
        "table_type": "EXTERNAL",
    }
    state.metastores["hms"] = MetastoreState(type="hive", fingerprint="f", refreshed_at=2.0, tables=[record])
    path = save_state(state, tmp_path / "state.json")
    again = read_state(path)
    assert again is not None and again.tables("hms") == [record] and again.environment == "dev"

    path.write_text('{"format": "floe-sources", "version"', encoding="utf-8")  # cut short
    assert read_state(path) is None
    path.write_text('{"format": "something else"}', encoding="utf-8")
    assert read_state(path) is None
