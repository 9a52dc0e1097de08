"""Governance of an ``extends:`` chain, one test per rule, asserting the exact text a user sees.

The chain used throughout (paths relative to a temporary working directory):

    enterprise.yaml            approves duckdb, duckdb_big, scratch, spark; configures the first three
    domains/commerce.yaml      narrows to duckdb, duckdb_big, scratch
    product.yaml               inherits approved/default; marts -> duckdb_big

Positions are asserted as ``file:line:col`` of the token the problem is about, found with
``at()`` so a fixture edit cannot silently move a position to the wrong line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from floe_dagster import load_manifest
from floe_dagster.manifest import ManifestError
from floe_dagster.plan.compile import compile_plan
from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest

ENTERPRISE = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata:
  name: acme
  level: enterprise
computes:
  approved: [duckdb, duckdb_big, scratch, spark]
  default: duckdb
  targets:
    duckdb:
      type: duckdb
      config:
        path: ":memory:"
        threads: 2
        memory_limit: 2GB
    duckdb_big:
      type: duckdb
      workload_size: large
      config: {path: ":memory:"}
    scratch:
      type: duckdb
      config: {path: ":memory:"}
"""

DOMAIN = """\
apiVersion: floe.dev/v1
kind: Manifest
extends: ../enterprise.yaml
metadata:
  name: commerce
  level: domain
computes:
  approved: [duckdb, duckdb_big, scratch]
  default: duckdb
"""

PRODUCT = """\
apiVersion: floe.dev/v1
kind: Manifest
extends: domains/commerce.yaml
metadata:
  name: shop
  level: product
transforms:
  dbt_project: {dbt_project}
  assignments:
    - select: "tag:marts"
      compute: duckdb_big
"""

FILES = {"enterprise.yaml": ENTERPRISE, "domains/commerce.yaml": DOMAIN, "product.yaml": PRODUCT}


@pytest.fixture(scope="module")
def demo_dbt(parsed_demo: Path) -> tuple[Path, dict[str, Any]]:
    """The demo's dbt project and manifest.json, from the session's parsed copy of the demo
    (``copy_demo_project`` + ``dbt parse`` once, see conftest.py): no dbt run per test."""
    loaded = load_manifest(parsed_demo / "manifests" / "manifest.yaml")
    return parsed_demo / "dbt_project", prepare_dbt_manifest(loaded)


@pytest.fixture
def chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_dbt: tuple[Path, dict[str, Any]]) -> Path:
    """The three files written to a fresh directory, which is also the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOE_ENV", raising=False)
    monkeypatch.delenv("FLOE_STATE_DIR", raising=False)
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{dbt_project}", json.dumps(str(demo_dbt[0]))))
    return tmp_path


@pytest.fixture
def dbt_manifest(demo_dbt: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    return demo_dbt[1]


def edit(root: Path, name: str, old: str, new: str) -> None:
    path = root / name
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {name}"
    path.write_text(text.replace(old, new))


def append(root: Path, name: str, text: str) -> None:
    path = root / name
    path.write_text(path.read_text() + text)


def at(
    root: Path, name: str, line_containing: str, token: str | None = None, after: str | None = None
) -> str:
    """``name:line:col`` of ``token`` on the line containing ``line_containing``.

    That line must be unique, or the first one below the unique line containing ``after``.
    """
    lines = (root / name).read_text().splitlines()

    def unique(needle: str) -> int:
        found = [i for i, line in enumerate(lines) if needle in line]
        assert len(found) == 1, f"{needle!r} must be on exactly one line of {name}"
        return found[0]

    if after is None:
        index = unique(line_containing)
    else:
        start = unique(after) + 1
        index = next(i for i in range(start, len(lines)) if line_containing in lines[i])
    return f"{name}:{index + 1}:{lines[index].index(token or line_containing) + 1}"


def problems(path: str = "product.yaml", **kwargs: Any) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_manifest(path, **kwargs)
    return [str(p) for p in info.value.problems]


def plan_problems(dbt_manifest: dict[str, Any], **kwargs: Any) -> list[str]:
    loaded = load_manifest("product.yaml", check_assignments=False, **kwargs)
    with pytest.raises(ManifestError) as info:
        compile_plan(loaded, dbt_manifest)
    return [str(p) for p in info.value.problems]


# --- compute governance -------------------------------------------------------------------------


def test_approved_must_be_a_subset_of_the_parent_level(chain: Path) -> None:
    edit(chain, "domains/commerce.yaml", "[duckdb, duckdb_big, scratch]", "[duckdb, duckdb_big, snowflake]")
    assert problems() == [
        f"{at(chain, 'domains/commerce.yaml', 'approved:', 'snowflake')}: computes.approved[2]:"
        " level domain: 'snowflake' is not approved by its parent level enterprise (enterprise.yaml);"
        " approved there: [duckdb, duckdb_big, scratch, spark]"
    ]


def test_approved_is_checked_against_the_effective_set_not_just_the_root(chain: Path) -> None:
    # spark is approved by the enterprise but not by the domain: the product may not take it back
    edit(
        chain,
        "product.yaml",
        "transforms:",
        "computes:\n  approved: [duckdb, duckdb_big, spark]\ntransforms:",
    )
    assert problems() == [
        f"{at(chain, 'product.yaml', 'approved:', 'spark')}: computes.approved[2]:"
        " level product: 'spark' is not approved by its parent level domain (domains/commerce.yaml);"
        " approved there: [duckdb, duckdb_big, scratch]"
    ]


def test_default_must_be_approved_at_its_own_level(chain: Path) -> None:
    edit(chain, "domains/commerce.yaml", "[duckdb, duckdb_big, scratch]", "[duckdb, scratch]")
    edit(chain, "domains/commerce.yaml", "default: duckdb", "default: duckdb_big")
    edit(chain, "product.yaml", "compute: duckdb_big", "compute: duckdb")
    assert problems() == [
        f"{at(chain, 'domains/commerce.yaml', 'default:', 'duckdb_big')}: computes.default:"
        " level domain: 'duckdb_big' is not in computes.approved [duckdb, scratch];"
        " approve it or pick one of those"
    ]


def test_a_level_configures_only_computes_its_parent_approved(chain: Path) -> None:
    edit(chain, "domains/commerce.yaml", "[duckdb, duckdb_big, scratch]", "[duckdb, scratch]")
    edit(chain, "product.yaml", "compute: duckdb_big", "compute: duckdb")
    edit(
        chain,
        "product.yaml",
        "transforms:",
        "computes:\n  targets:\n    duckdb_big:\n      config: {threads: 4}\ntransforms:",
    )
    assert problems() == [
        f"{at(chain, 'product.yaml', 'duckdb_big:')}: computes.targets.duckdb_big:"
        " level product: configures compute 'duckdb_big', which is not approved by its parent"
        " level domain (domains/commerce.yaml); a level may configure only [duckdb, scratch]"
    ]


# --- levels and the chain itself ----------------------------------------------------------------


def test_a_level_may_not_extend_a_lower_level(chain: Path) -> None:
    edit(chain, "product.yaml", "level: product", "level: enterprise")
    assert problems() == [
        f"{at(chain, 'product.yaml', 'level:', 'enterprise')}: metadata.level: an enterprise manifest"
        " cannot extend a domain one (domains/commerce.yaml); levels go enterprise -> domain ->"
        " product, so set metadata.level or fix extends"
    ]


def test_a_product_cannot_be_extended(chain: Path) -> None:
    team = (chain / "product.yaml").read_text().replace("domains/commerce.yaml", "product.yaml")
    (chain / "team.yaml").write_text(team.replace("name: shop", "name: team"))
    assert problems("team.yaml") == [
        f"{at(chain, 'team.yaml', 'level:', 'product')}: metadata.level: a product manifest cannot"
        " extend a product one (product.yaml); levels go enterprise -> domain -> product, so set"
        " metadata.level or fix extends"
    ]


def test_an_extends_cycle_prints_the_chain(chain: Path) -> None:
    edit(chain, "enterprise.yaml", "kind: Manifest\n", "kind: Manifest\nextends: domains/commerce.yaml\n")
    assert problems() == [
        f"{at(chain, 'enterprise.yaml', 'extends:', 'domains')}: extends: extends cycle: product.yaml"
        " -> domains/commerce.yaml -> enterprise.yaml -> domains/commerce.yaml; remove one of these"
        " extends"
    ]


def test_a_manifest_extending_itself_is_a_cycle(chain: Path) -> None:
    edit(chain, "product.yaml", "extends: domains/commerce.yaml", "extends: ./product.yaml")
    assert problems() == [
        f"{at(chain, 'product.yaml', 'extends:', './')}: extends: extends cycle: product.yaml ->"
        " product.yaml; remove one of these extends"
    ]


def test_a_missing_parent_prints_the_chain(chain: Path) -> None:
    edit(chain, "domains/commerce.yaml", "../enterprise.yaml", "../enterprize.yaml")
    assert problems() == [
        f"{at(chain, 'domains/commerce.yaml', 'extends:', '../')}: extends: parent manifest"
        " enterprize.yaml not found (chain: product.yaml -> domains/commerce.yaml -> enterprize.yaml);"
        " the path is relative to domains/commerce.yaml"
    ]


@pytest.mark.parametrize(
    ("extends", "reason"),
    [('"a\\0b.yaml"', "embedded null byte"), ("x" * 300 + ".yaml", "File name too long")],
)
def test_an_unusable_parent_path_is_a_problem_not_a_crash(chain: Path, extends: str, reason: str) -> None:
    edit(chain, "product.yaml", "extends: domains/commerce.yaml", f"extends: {extends}")
    [problem] = problems()
    assert problem.startswith(
        f"{at(chain, 'product.yaml', 'extends:', extends[:3])}: extends: parent manifest"
    )
    assert f"not found: {reason} (chain: product.yaml -> " in problem


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"apiVersion: floe.dev/v1\nkind: Manif\xe9st\n",
            "enterprise.yaml:2:12: YAML syntax error: the file is not UTF-8 (invalid continuation byte);"
            " save it as UTF-8",
        ),
        (
            b'apiVersion: floe.dev/v1\nkind: Manifest\nmetadata: {name: "a\x07"}\n',
            "enterprise.yaml:3:20: YAML syntax error: unacceptable character #x0007 (special characters"
            " are not allowed); remove it",
        ),
        (
            b"apiVersion: floe.dev/v1\nkind: Manifest\nmetadata: {name: !!float abc}\n",
            "enterprise.yaml:1:1: YAML syntax error: could not convert string to float: 'abc';"
            " fix the YAML in this file",
        ),
    ],
)
def test_an_unreadable_parent_is_a_problem_in_that_file(chain: Path, content: bytes, message: str) -> None:
    (chain / "enterprise.yaml").write_bytes(content)
    assert problems() == [message]


# --- transforms: assignments and environment parity ---------------------------------------------


def test_assignment_to_an_unapproved_compute_names_models_rule_and_allowed(
    chain: Path, dbt_manifest: dict[str, Any]
) -> None:
    edit(chain, "product.yaml", "transforms:", "computes:\n  approved: [duckdb, scratch]\ntransforms:")
    expected = [
        f"{at(chain, 'product.yaml', 'compute: duckdb_big', 'duckdb_big')}:"
        " transforms.assignments[0].compute: rule 1 ('tag:marts') assigns model(s) [customers, orders]"
        " to compute 'duckdb_big', which is not approved at level product; allowed: [duckdb, scratch]"
    ]
    assert plan_problems(dbt_manifest) == expected
    # load_manifest (what `floe validate/plan/compile` stop at) says the same: the dbt project's
    # manifest.json is current, so the models the rule selects are named without a dbt parse
    assert problems() == expected


def test_an_unapproved_rule_without_a_parsed_dbt_project_still_names_level_and_allowed(
    chain: Path, demo_dbt: tuple[Path, dict[str, Any]]
) -> None:
    shutil.copytree(demo_dbt[0], chain / "fresh_dbt", ignore=shutil.ignore_patterns("target", "logs"))
    edit(chain, "product.yaml", json.dumps(str(demo_dbt[0])), "fresh_dbt")
    edit(chain, "product.yaml", "transforms:", "computes:\n  approved: [duckdb, scratch]\ntransforms:")
    assert problems() == [
        f"{at(chain, 'product.yaml', 'compute: duckdb_big', 'duckdb_big')}:"
        " transforms.assignments[0].compute: rule 1 ('tag:marts') assigns compute 'duckdb_big', which is"
        " not approved at level product; allowed: [duckdb, scratch]"
    ]
    assert not (chain / "fresh_dbt" / "target").exists(), "loading a manifest must not parse dbt"


# A second compute type for prod, real and installed: plan compilation needs no server for it.
ENVIRONMENTS = """\
environments:
  dev: {}
  prod:
    computes:
      duckdb_big:
        type: postgres
        config: {host: warehouse.internal, user: dbt, dbname: analytics}
      scratch:
        type: postgres
        config: {host: warehouse.internal, user: dbt, dbname: scratch}
"""


def test_environment_parity_lists_transforms_and_differing_environments(
    chain: Path, dbt_manifest: dict[str, Any]
) -> None:
    append(chain, "product.yaml", ENVIRONMENTS)
    # scratch differs too, but no transform runs on it: only duckdb_big is a parity problem
    assert plan_problems(dbt_manifest) == [
        f"{at(chain, 'product.yaml', 'type:', 'postgres', after='duckdb_big:')}:"
        " environments.prod.computes.duckdb_big.type: environment parity: transform(s) [customers,"
        " orders] run on compute 'duckdb_big', whose type differs by environment: duckdb in [dev];"
        " postgres in [prod]; a transform must run on the same engine type everywhere"
    ]


def test_a_type_that_differs_only_for_an_unused_compute_is_not_a_parity_problem(
    chain: Path, dbt_manifest: dict[str, Any]
) -> None:
    without_big = ENVIRONMENTS.replace(
        "      duckdb_big:\n        type: postgres\n"
        "        config: {host: warehouse.internal, user: dbt, dbname: analytics}\n",
        "",
    )
    append(chain, "product.yaml", without_big)
    plan = compile_plan(load_manifest("product.yaml", check_assignments=False), dbt_manifest)
    assert {t.compute for t in plan.transforms} == {"duckdb", "duckdb_big"}
    prod = load_manifest("product.yaml", environment="prod")
    assert prod.target("scratch").type == "postgres"
    assert prod.target_types_by_environment == {
        "dev": {"duckdb": "duckdb", "duckdb_big": "duckdb", "scratch": "duckdb"},
        "prod": {"duckdb": "duckdb", "duckdb_big": "duckdb", "scratch": "postgres"},
    }


def test_an_environment_changing_the_type_replaces_the_config_instead_of_merging_it(chain: Path) -> None:
    append(chain, "product.yaml", ENVIRONMENTS)
    prod = load_manifest("product.yaml", environment="prod", check_assignments=False)
    # duckdb's `path` would be an unknown key to postgres: another engine's keys are not inherited
    assert prod.target("duckdb_big").config == {
        "host": "warehouse.internal",
        "user": "dbt",
        "dbname": "analytics",
    }
    assert prod.plugin_config("computes", "duckdb_big").host == "warehouse.internal"  # type: ignore[attr-defined]
    assert load_manifest("product.yaml", check_assignments=False).target("duckdb_big").config == {
        "path": ":memory:"
    }


# --- environments and presets -------------------------------------------------------------------


def test_an_unknown_floe_env_lists_the_defined_environments(
    chain: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    append(chain, "product.yaml", "environments:\n  dev: {}\n  prod: {}\n")
    monkeypatch.setenv("FLOE_ENV", "staging")
    assert problems() == [
        f"{at(chain, 'product.yaml', 'environments:')}: environments: FLOE_ENV=staging: no such"
        " environment; defined: [dev, prod]"
    ]
    monkeypatch.setenv("FLOE_ENV", "prod")
    assert load_manifest("product.yaml").environment == "prod"


def test_an_environment_override_must_name_a_configured_compute(chain: Path) -> None:
    append(
        chain,
        "product.yaml",
        "environments:\n  prod:\n    computes:\n      duckdb_xl: {config: {threads: 8}}\n",
    )
    assert problems() == [
        f"{at(chain, 'product.yaml', 'duckdb_xl:')}: environments.prod.computes.duckdb_xl: environment"
        " 'prod' overrides compute 'duckdb_xl', which has no entry in computes.targets [duckdb,"
        " duckdb_big, scratch]"
    ]


def test_an_unknown_workload_size_lists_the_presets(chain: Path) -> None:
    edit(chain, "enterprise.yaml", "workload_size: large", "workload_size: huge")
    assert problems() == [
        f"{at(chain, 'enterprise.yaml', 'workload_size:', 'huge')}:"
        " computes.targets.duckdb_big.workload_size: compute 'duckdb_big': unknown workload size"
        " 'huge'; presets: ['large', 'medium', 'small']"
    ]


def test_an_unknown_workload_size_in_an_environment_points_at_the_override(chain: Path) -> None:
    append(
        chain, "product.yaml", "environments:\n  prod:\n    computes:\n      duckdb: {workload_size: xl}\n"
    )
    assert problems() == [
        f"{at(chain, 'product.yaml', 'workload_size:', 'xl')}:"
        " environments.prod.computes.duckdb.workload_size: compute 'duckdb': unknown workload size"
        " 'xl'; presets: ['large', 'medium', 'small']"
    ]


# --- a valid chain: intersection, merge and positions -------------------------------------------

PRODUCT_OVERRIDES = """computes:
  approved: [duckdb_big, duckdb]
  default: duckdb
  targets:
    duckdb:
      workload_size: medium
      config:
        threads: 4
environments:
  prod:
    computes:
      duckdb:
        config: {memory_limit: 8GB}
"""


def test_a_level_without_computes_inherits_its_parents(chain: Path) -> None:
    loaded = load_manifest("product.yaml")
    assert loaded.manifest.computes.approved == ["duckdb", "duckdb_big", "scratch"]
    assert loaded.manifest.computes.default == "duckdb"
    assert str(loaded.position("computes", "approved", 2)) == at(
        chain, "domains/commerce.yaml", "approved:", "scratch"
    )
    assert str(loaded.position("computes", "default")) == at(
        chain, "domains/commerce.yaml", "default:", "duckdb"
    )
    assert loaded.target("duckdb_big").workload_size == "large"


def test_a_valid_three_level_chain_merges_with_positions_in_the_right_file(
    chain: Path, dbt_manifest: dict[str, Any]
) -> None:
    append(chain, "product.yaml", PRODUCT_OVERRIDES)
    loaded = load_manifest("product.yaml", check_assignments=False)
    m = loaded.manifest
    # effective approved: enterprise {duckdb, duckdb_big, scratch, spark} & domain {.., scratch} & product
    assert m.computes.approved == ["duckdb_big", "duckdb"]
    assert [layer.document.metadata.level for layer in loaded.chain] == ["enterprise", "domain", "product"]
    assert m.metadata.name == "shop"
    duckdb = loaded.target("duckdb")
    assert (duckdb.type, duckdb.workload_size) == ("duckdb", "medium")
    assert duckdb.config == {"path": ":memory:", "threads": 4, "memory_limit": "2GB"}
    assert sorted(m.computes.targets) == ["duckdb", "duckdb_big", "scratch"]
    prod = load_manifest("product.yaml", environment="prod").target("duckdb")
    assert prod.config == {"path": ":memory:", "threads": 4, "memory_limit": "8GB"}

    def position(*path: str) -> str:
        return str(loaded.source_map.position(path))

    config = ("computes", "targets", "duckdb", "config")
    assert position(*config, "threads") == at(chain, "product.yaml", "threads:", "4")
    assert position(*config, "memory_limit") == at(chain, "enterprise.yaml", "memory_limit:", "2GB")
    assert position("computes", "targets", "duckdb", "type") == at(
        chain, "enterprise.yaml", "type:", "duckdb", after="    duckdb:"
    )
    assert str(loaded.source_map.position(("computes", "approved", 1))) == at(
        chain, "product.yaml", "approved:", "duckdb]"
    )
    assert position("computes", "targets", "duckdb_big", "workload_size") == at(
        chain, "enterprise.yaml", "workload_size:", "large"
    )
    assert position("extends") == at(chain, "product.yaml", "extends:", "domains")

    plan = compile_plan(loaded, dbt_manifest)
    assert {t.name: (t.compute, t.reason) for t in plan.transforms} == {
        "customers": ("duckdb_big", "rule 1 (tag:marts)"),
        "orders": ("duckdb_big", "rule 1 (tag:marts)"),
        "stg_customers": ("duckdb", "default"),
        "stg_orders": ("duckdb", "default"),
        "stg_payments": ("duckdb", "default"),
    }
    assert plan.computes == {"duckdb_big": "duckdb", "duckdb": "duckdb"}
    assert {t.name: t.workload_size for t in plan.transforms}["orders"] == "large"


def test_an_error_in_a_value_set_by_the_enterprise_points_into_the_enterprise_file(chain: Path) -> None:
    append(chain, "product.yaml", PRODUCT_OVERRIDES.replace("threads: 4", "threads: 0"))
    edit(chain, "enterprise.yaml", "memory_limit: 2GB", "memory_limit: lots")
    assert problems() == [
        f"{at(chain, 'product.yaml', 'threads:', '0')}: computes.targets.duckdb.config.threads: Input"
        " should be greater than or equal to 1 (got 0)",
        f"{at(chain, 'enterprise.yaml', 'memory_limit:', 'lots')}:"
        " computes.targets.duckdb.config.memory_limit: Value error, 'lots' is not a memory size;"
        " write it like '4GB' or '512MB' (got 'lots')",
    ]


# --- inputs that once crashed the loader or the plan


def test_yaml_merge_keys_load(chain: Path) -> None:
    edit(
        chain,
        "enterprise.yaml",
        "    duckdb_big:\n      type: duckdb\n",
        "    duckdb_big:\n      <<: &base {type: duckdb}\n",
    )
    assert load_manifest("product.yaml").target("duckdb_big").type == "duckdb"


def test_an_invalid_selector_is_a_manifest_error_at_the_rule(
    chain: Path, dbt_manifest: dict[str, Any]
) -> None:
    edit(chain, "product.yaml", '"tag:marts"', '"tags:marts"')  # a one-letter typo of a dbt method
    loaded = load_manifest("product.yaml", check_assignments=False)
    with pytest.raises(ManifestError) as info:
        compile_plan(loaded, dbt_manifest)
    [problem] = info.value.problems
    assert str(problem.position) == at(chain, "product.yaml", "select:", '"tags')
    assert problem.path == ("transforms", "assignments", 0, "select")
    assert "tags:marts" in problem.message


def test_an_ordered_map_tag_loads(chain: Path) -> None:
    edit(chain, "product.yaml", "metadata:\n  name: shop\n", "metadata: !!omap\n  - name: shop\n")
    edit(chain, "product.yaml", "  level: product\n", "  - level: product\n")
    assert load_manifest("product.yaml").name == "shop"


def test_a_path_in_an_unknown_users_home_is_a_manifest_error(chain: Path) -> None:
    edit(
        chain,
        "enterprise.yaml",
        'path: ":memory:"\n        threads',
        'path: "~no-such-user-floe/db"\n        threads',
    )
    with pytest.raises(ManifestError) as info:
        load_manifest("product.yaml")
    [problem] = info.value.problems
    assert str(problem.position) == at(chain, "enterprise.yaml", "path:", '"~no-such', after="    duckdb:")
    assert problem.path == ("computes", "targets", "duckdb", "config", "path")


def test_a_null_in_a_child_resets_the_key_to_its_default_instead_of_inheriting(chain: Path) -> None:
    append(
        chain,
        "domains/commerce.yaml",
        "  targets:\n    duckdb:\n      config:\n        memory_limit: null\n        threads: 4\n",
    )
    config = load_manifest(chain / "product.yaml").plugin_config("computes", "duckdb")
    assert config.memory_limit is None  # type: ignore[attr-defined]  # reset, not the parent's 2GB
    assert config.threads == 4  # type: ignore[attr-defined]
    assert config.path == ":memory:"  # type: ignore[attr-defined]  # untouched keys are inherited
