"""`floe observe` and `floe refresh` on the seeded demo catalog: output, formats, clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from floe_dagster.cli import main
from floe_dagster.demo import seed_demo
from floe_dagster.manifest.loader import LoadedManifest, load_manifest
from floe_dagster.metastores.state import default_state_path, read_state
from floe_dagster.plan.builders import build_catalog
from tests.helpers import VENV_BIN, copy_demo_project

RAW = ("customers", "orders", "payments")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedManifest]:
    root = copy_demo_project(tmp_path_factory.mktemp("observe") / "project")
    with pytest.MonkeyPatch.context() as env:
        for name in ("FLOE_STATE_DIR", "FLOE_MANIFEST", "FLOE_ENV"):
            env.delenv(name, raising=False)
        loaded = load_manifest(root / "manifests" / "manifest.yaml")
        seed_demo(loaded)
        yield loaded


def snapshot_ids(loaded: LoadedManifest) -> dict[str, str]:
    catalog = build_catalog(loaded, "lakehouse")
    ids = {}
    for table in RAW:
        snapshot = catalog.load_table(("raw", table)).current_snapshot()
        assert snapshot is not None
        ids[f"lakehouse/raw/{table}"] = str(snapshot.snapshot_id)
    return ids


def test_observe_prints_every_key_and_data_version(
    seeded: LoadedManifest, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["observe", str(seeded.path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["KEY", "DATA", "VERSION"]
    rows = dict(line.split() for line in lines[1:4])
    assert rows == snapshot_ids(seeded)
    assert lines[-1] == "3 table(s)"


def test_observe_json_for_one_metastore(seeded: LoadedManifest, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["observe", str(seeded.path), "--metastore", "lakehouse", "--format", "json"]) == 0
    observed = json.loads(capsys.readouterr().out)
    assert {o["key"]: o["data_version"] for o in observed} == snapshot_ids(seeded)
    assert {o["metastore"] for o in observed} == {"lakehouse"}


def test_unknown_metastore_names_the_ones_there_are(seeded: LoadedManifest) -> None:
    for command in ("observe", "refresh"):
        result = subprocess.run(
            [str(VENV_BIN / "floe"), command, str(seeded.path), "--metastore", "nope"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 1
        assert result.stderr.strip() == (
            "floe: unknown metastore 'nope'; the manifest manifest.yaml has: lakehouse"
        )
        assert "Traceback" not in result.stderr and result.stdout == ""


def test_unreachable_metastore_is_one_clear_line(
    seeded: LoadedManifest, capsys: pytest.CaptureFixture[str]
) -> None:
    database = seeded.state_dir / "catalog.db"
    aside = database.with_name("catalog.db.away")
    database.rename(aside)
    database.mkdir()
    try:
        assert main(["observe", str(seeded.path)]) == 1
    finally:
        shutil.rmtree(database)
        aside.rename(database)
    err = capsys.readouterr().err
    assert err.startswith("floe: metastore 'lakehouse' could not be observed: [iceberg:list_namespaces]")
    assert err.rstrip().endswith("(retryable: yes, the next observation tries again)")
    assert "Traceback" not in err


def test_refresh_writes_the_defs_state(seeded: LoadedManifest, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["refresh", str(seeded.path)]) == 0
    out = capsys.readouterr().out
    path = default_state_path(seeded)
    assert out.splitlines() == ["metastore 'lakehouse': 3 table(s)", f"defs state: {path}"]
    state = read_state(Path(path))
    assert state is not None
    assert sorted(t["name"] for t in state.tables("lakehouse")) == list(RAW)


def mapped_manifest(loaded: LoadedManifest, name: str, mapping: str) -> Path:
    """A second manifest beside the demo's (same catalog and dbt project, its own state key)."""
    text = loaded.path.read_text().replace("name: jaffle-lakehouse", f"name: {name}")
    text = text.replace('    include: ["raw.*"]\n', f'    include: ["raw.*"]\n{mapping}')
    path = loaded.path.with_name(f"{name}.yaml")
    path.write_text(text)
    return path


def test_observe_prints_the_keys_the_manifest_maps(
    seeded: LoadedManifest, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = mapped_manifest(
        seeded,
        "mapped-observe",
        "    asset_key_prefix: [warehouse, shop]\n    asset_keys: {raw.orders: finance/orders}\n",
    )
    assert main(["observe", str(manifest), "--format", "json"]) == 0
    observed = {o["key"]: o["data_version"] for o in json.loads(capsys.readouterr().out)}
    ids = snapshot_ids(seeded)
    assert observed == {
        "warehouse/shop/raw/customers": ids["lakehouse/raw/customers"],
        "finance/orders": ids["lakehouse/raw/orders"],
        "warehouse/shop/raw/payments": ids["lakehouse/raw/payments"],
    }
