"""dbt on DuckDB reads metastore tables: a dbt source linked to a Hive (or Glue) table is a view.

End to end: a small dbt project in a temporary folder whose source is the partitioned Parquet
table ``events`` of the real Hive Metastore fixture (``meta: {floe: {metastore: legacy}}``, the
metastore's ``type`` left for floe to infer from its thrift:// uri). ``dbt build`` with floe's
generated profile runs the model on DuckDB and the model's rows are read back from the DuckDB
file. The resolver is also checked on its own: one batched call per namespace, failing views
for what cannot be read, and Glue tables on moto's S3 read with the credentials the metastore
chokepoint resolved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from floe_dagster.computes.duckdb_extensions import connect_with_extensions
from floe_dagster.manifest.loader import LoadedManifest, load_manifest
from floe_dagster.readers.duckdb_scan import default_extension_dir
from floe_dagster.readers.metastore_views import create_source_views, resolve_source_views
from floe_dagster.transforms.dbt_manifest import run_dbt
from floe_dagster.transforms.profiles import write_profiles
from tests.fixtures.glue_seed import glue_options, seed_glue
from tests.fixtures.hive_metastore import SeededMetastore
from tests.fixtures.moto_server import MotoServer

pytestmark = pytest.mark.server

FEBRUARY = ("2024-02-01", "2024-02-02", "2024-02-03")
MODEL = """
select ds, bucket, count(*) as n, sum(amount) as amount
from {{ source('legacy', 'events') }}
where ds between '2024-02-01' and '2024-02-03'
group by ds, bucket
order by ds, bucket
"""


def write_project(root: Path, metastores: str, sources: str, models: dict[str, str]) -> Path:
    """A manifest and a dbt project under ``root``; returns the manifest path."""
    (root / "dbt" / "models").mkdir(parents=True)
    (root / "dbt" / "dbt_project.yml").write_text(
        "name: reader\nversion: '1.0.0'\nconfig-version: 2\nprofile: reader\n"
        "model-paths: [models]\nmodels:\n  reader:\n    +materialized: table\n"
    )
    (root / "dbt" / "models" / "_sources.yml").write_text(sources)
    for name, sql in models.items():
        (root / "dbt" / "models" / f"{name}.sql").write_text(sql)
    manifest = root / "manifest.yaml"
    manifest.write_text(
        "apiVersion: floe.dev/v1\nkind: Manifest\nmetadata: {name: reader}\nstate_dir: .floe\n"
        "computes:\n  approved: [duckdb]\n  default: duckdb\n  targets:\n"
        "    duckdb:\n      type: duckdb\n"
        "      config: {path: .floe/warehouse.duckdb, extensions: [httpfs]}\n"
        f"{metastores}transforms:\n  dbt_project: dbt\n"
    )
    return manifest


def hive_sources(tables: list[str]) -> str:
    listed = "".join(f"      - name: {t}\n" for t in tables)
    return (
        "version: 2\nsources:\n  - name: legacy\n    schema: floe_seed\n"
        f"    meta: {{floe: {{metastore: legacy}}}}\n    tables:\n{listed}"
    )


def hive_metastores(seeded: SeededMetastore) -> str:
    return f'metastores:\n  legacy:\n    config: {{uri: "{seeded.metastore.uri}"}}\n'


def expected_february(seeded: SeededMetastore) -> list[tuple[str, int, int, float]]:
    """What the seed wrote: ids i*10 + bucket*2 + r (r < rows) for day i, amount = float(id)."""
    rows = []
    for day in FEBRUARY:
        i = seeded.days.index(day)
        for bucket in seeded.buckets:
            ids = [i * 10 + bucket * 2 + r for r in range(seeded.rows_per_partition)]
            rows.append((day, bucket, len(ids), float(sum(ids))))
    return rows


def test_dbt_build_on_duckdb_reads_a_partitioned_hive_table(
    seeded_hive_metastore: SeededMetastore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FLOE_STATE_DIR", "FLOE_ENV", "DBT_TARGET_PATH"):
        monkeypatch.delenv(name, raising=False)
    seeded = seeded_hive_metastore
    manifest = write_project(
        tmp_path, hive_metastores(seeded), hive_sources(["events"]), {"february_buckets": MODEL}
    )
    loaded = load_manifest(manifest)
    assert loaded.manifest.metastores["legacy"].type == "hive"  # inferred from the thrift:// uri
    run_dbt(loaded, ["build"], write_profiles(loaded))

    with duckdb.connect(str(tmp_path / ".floe" / "warehouse.duckdb"), read_only=True) as con:
        rows = con.sql("SELECT ds, bucket, n, amount FROM main.february_buckets ORDER BY ALL").fetchall()
        assert rows == expected_february(seeded)
        # the source is a view named as dbt compiles it, over the table's location
        definition = con.sql(
            "SELECT sql FROM duckdb_views() WHERE schema_name = 'floe_seed' AND view_name = 'events'"
        ).fetchone()
    assert definition is not None and "read_parquet" in definition[0] and "hive_partitioning" in definition[0]


def dbt_manifest_for(loaded: LoadedManifest) -> dict[str, Any]:
    run_dbt(loaded, ["parse"], write_profiles(loaded))
    return dict(json.loads((loaded.dbt_project_dir / "target" / "manifest.json").read_text()))


def test_views_are_resolved_in_one_batched_call_and_unreadable_tables_fail_when_read(
    seeded_hive_metastore: SeededMetastore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOE_STATE_DIR", raising=False)
    seeded = seeded_hive_metastore
    tables = ["events", "people_csv", "clicks_json", "orders_orc", "not_there"]
    manifest = write_project(tmp_path, hive_metastores(seeded), hive_sources(tables), {})
    loaded = load_manifest(manifest)
    resolved = resolve_source_views(loaded, dbt_manifest_for(loaded))
    # one get_table_objects_by_name for five sources, one get_partitions for `events` (partitioned)
    assert resolved.api_calls == {"legacy": 2}
    by_table = {v.relation.identifier: v for v in resolved.views}
    assert sorted(by_table) == sorted(tables)
    readable = {"events", "people_csv", "clicks_json", "orders_orc"}  # ORC: an Arrow dataset (formats.md)
    assert {t for t, v in by_table.items() if v.scan is not None} == readable
    assert "not_there" in (by_table["not_there"].error or "")

    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS warehouse")
    create_source_views(con, resolved)
    assert con.sql("SELECT count(*) FROM warehouse.floe_seed.events").fetchone() == (
        seeded.partition_count * seeded.rows_per_partition,
    )
    assert con.sql("SELECT count(*) FROM warehouse.floe_seed.people_csv").fetchone() == (2,)
    with pytest.raises(duckdb.Error) as info:
        con.sql("SELECT * FROM warehouse.floe_seed.not_there").fetchall()
    message = str(info.value)
    assert "source.reader.legacy.not_there" in message and "metastore 'legacy'" in message
    assert "not found" in message


def test_glue_sources_read_from_s3_with_the_chokepoint_credentials(
    moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOE_STATE_DIR", raising=False)
    seeded = seed_glue(moto_server)
    options = glue_options(moto_server)
    config = "".join(f"      {k}: {json.dumps(v)}\n" for k, v in options.items())
    metastores = f"metastores:\n  lake:\n    type: glue\n    config:\n{config}"
    sources = (
        f"version: 2\nsources:\n  - name: glue\n    schema: {seeded.db}\n"
        "    meta: {floe: {metastore: lake}}\n    tables:\n      - name: orders\n      - name: events\n"
    )
    manifest = write_project(tmp_path, metastores, sources, {})
    loaded = load_manifest(manifest)
    resolved = resolve_source_views(loaded, dbt_manifest_for(loaded))
    assert resolved.api_calls == {"lake": 2}  # one GetTables for both, one GetPartitions for `events`
    assert len(resolved.secrets) == 1 and f"SCOPE ['s3://{seeded.bucket}']" in resolved.secrets[0]
    assert moto_server.secret_access_key not in repr(resolved)  # the secret SQL is never in a repr

    con = connect_with_extensions(":memory:", default_extension_dir(), ["httpfs"])
    con.execute("ATTACH ':memory:' AS warehouse")
    create_source_views(con, resolved)
    assert con.sql(f'SELECT count(*) FROM warehouse."{seeded.db}".orders').fetchone() == (5,)
    assert con.sql(f'SELECT count(*), count(DISTINCT ds) FROM warehouse."{seeded.db}".events').fetchone() == (
        12,
        3,
    )
