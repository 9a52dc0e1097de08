"""Property-based tests of hierarchical governance (``extends:`` chains) and of the loader's errors.

1. Random hierarchies (1-4 levels: approved sets, defaults, targets, rules, environment overrides)
   are loaded and planned, and the outcome is compared with the rules as the README states them
   (an independent model below, ``expected_outcome``): what must fail fails with a ManifestError
   whose positions are real places in the chain's files, what may succeed does, every transform
   gets exactly one compute from the product's effective approved set, and merged values come
   from (and point into) the file of the level that set them last.
2. Invalid inputs (mutated chains, random YAML structures, random text and bytes) always give a
   ManifestError with positions, never another exception.

Each example writes its files into a fresh temporary directory (function-scoped fixtures are
not reset between hypothesis examples) that is also the working directory, so positions are
shown relative to it. dbt runs once for the session (``parsed_demo``), never per example.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from floe_dagster.manifest import ManifestError, load_manifest
from floe_dagster.plan.compile import compile_plan
from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest

POOL = ("c0", "c1", "c2", "c3")
LEVELS = ("enterprise", "domain", "product")
RANK = {level: rank for rank, level in enumerate(LEVELS)}
PRESETS = ("small", "medium", "large")
MODELS = frozenset({"customers", "orders", "stg_customers", "stg_orders", "stg_payments"})
STAGING = frozenset({"stg_customers", "stg_orders", "stg_payments"})
# The demo project's models each selector matches (checked against dbt: test_selector_table_matches_dbt).
SELECTORS: dict[str, frozenset[str]] = {
    "tag:marts": frozenset({"customers", "orders"}),
    "tag:staging": STAGING,
    "stg_orders": frozenset({"stg_orders"}),
    "+orders": frozenset({"orders", "stg_orders", "stg_payments"}),
    "orders+": frozenset({"orders", "customers"}),
    "path:models/staging": STAGING,
    "path:models/marts": frozenset({"customers", "orders"}),
}
DIRS = ("", "a", "a/b", "c")
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class DemoDbt(NamedTuple):
    project: Path
    manifest: dict[str, Any]

    def __repr__(self) -> str:  # hypothesis prints fixtures of a failing example: not 600 kB of JSON
        return f"DemoDbt({self.project})"


@pytest.fixture(scope="module")
def demo_dbt(parsed_demo: Path) -> DemoDbt:
    """The demo's dbt project and manifest.json, from the session's parsed copy of the demo
    (``copy_demo_project`` + ``dbt parse`` once, see conftest.py)."""
    loaded = load_manifest(parsed_demo / "manifests" / "manifest.yaml")
    return DemoDbt(parsed_demo / "dbt_project", prepare_dbt_manifest(loaded))


@pytest.fixture(scope="module", autouse=True)
def _no_floe_environment() -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in ("FLOE_ENV", "FLOE_STATE_DIR") if name in os.environ}
    yield
    os.environ.update(saved)


# --- writing a chain ----------------------------------------------------------------------------


@dataclass
class Chain:
    """The files of an extends chain, root first; ``docs[i]`` is written to ``files[i]``."""

    files: list[str]
    docs: list[Any]
    raw: dict[int, str | bytes] = field(default_factory=dict)  # file index -> text written as is

    @property
    def product(self) -> str:
        return self.files[-1]


def dump_yaml(data: Any) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def write_chain(root: Path, chain: Chain) -> None:
    for index, (name, doc) in enumerate(zip(chain.files, chain.docs, strict=True)):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        content = chain.raw.get(index, None)
        if content is None:
            path.write_text(dump_yaml(doc), encoding="utf-8")
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def relative_extends(child: str, parent: str) -> str:
    return os.path.relpath(parent, os.path.dirname(child) or ".")


@contextlib.contextmanager
def fresh_directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        yield Path(tmp).resolve()


def assert_positions(error: ManifestError, root: Path, chain: Chain) -> None:
    """Every problem is at a real place (file of the chain, line within it, column >= 1)."""
    files = {(root / name).resolve() for name in chain.files}
    assert error.problems, "a ManifestError without problems"
    for problem in error.problems:
        position = problem.position
        assert not Path(
            position.file
        ).is_absolute(), f"{problem}: not shown relative to the working directory"
        where = (root / position.file).resolve()
        assert where in files, f"{problem}: {position.file} is not a file of the chain {chain.files}"
        lines = where.read_bytes().splitlines() or [b""]
        assert 1 <= position.line <= len(lines) + 1, f"{problem}: line out of range ({len(lines)} lines)"
        assert position.column >= 1, str(problem)
        assert problem.message.strip(), str(problem)


# --- 1. random hierarchies ----------------------------------------------------------------------


# The rules a generated chain may break: each example follows every rule but (at most) one, so a
# rule that floe_dagster stopped enforcing shows up as an accepted chain, on its own.
BREAKABLE = (
    "level order",
    "approved not a subset of the parent's",
    "empty approved",
    "default not approved at its level",
    "inherited default not approved",
    "no default",
    "target of a compute the parent did not approve",
    "approved compute without target",
    "target without type",
    "unknown workload size",
    "invalid plugin config",
    "no transforms",
    "rule to an unapproved compute",
    "environment overrides an unknown compute",
    "unknown workload size in an environment",
)
ANY_RULE = "any rule"


def chance(draw: st.DrawFn, percent: int) -> bool:
    """True with about ``percent``% probability (shrinks towards True)."""
    return draw(st.integers(0, 99)) < percent


def subset(draw: st.DrawFn, names: Iterable[str], min_size: int = 0) -> list[str]:
    pool = sorted(set(names))
    if not pool:
        return []
    size = min(min_size, len(pool))
    return draw(st.lists(st.sampled_from(pool), unique=True, min_size=size, max_size=len(pool)))


def one_of(draw: st.DrawFn, names: Iterable[str]) -> str | None:
    pool = sorted(set(names))
    return draw(st.sampled_from(pool)) if pool else None


@st.composite
def level_sequences(draw: st.DrawFn, n: int, broken: bool) -> list[str | None]:
    """enterprise <= domain <= product along the chain, product only last (unless ``broken``)."""
    ranks = sorted(draw(st.lists(st.integers(0, 1), min_size=n - 1, max_size=n - 1)))
    ranks.append(draw(st.integers(ranks[-1] if ranks else 0, 2)))
    if broken and n > 1:
        child = draw(st.integers(1, n - 1))
        if ranks[child - 1] == 0 or chance(draw, 50):
            ranks[child - 1] = 2  # a product extended
        else:
            ranks[child] = draw(st.integers(0, ranks[child - 1] - 1))  # a level above its parent
    levels: list[str | None] = [LEVELS[r] for r in ranks]
    if levels[-1] == "product" and chance(draw, 30):
        levels[-1] = None  # omitted: product is the default
    return levels


@st.composite
def target_layer(draw: st.DrawFn, root: bool, breaks: Callable[[str], bool]) -> dict[str, Any]:
    target: dict[str, Any] = {}
    if (root and not breaks("target without type")) or (not root and chance(draw, 30)):
        target["type"] = "duckdb"
    if breaks("unknown workload size"):
        target["workload_size"] = "huge"
    elif chance(draw, 40):
        target["workload_size"] = draw(st.sampled_from(PRESETS))
    config: dict[str, Any] = {"path": ":memory:"} if root or chance(draw, 30) else {}
    if breaks("invalid plugin config"):
        config["threads"] = 0
    elif chance(draw, 40):
        config["threads"] = draw(st.integers(1, 8))
    if config or chance(draw, 50):
        target["config"] = config
    return target


@st.composite
def hierarchies(draw: st.DrawFn, dbt_project: str, broken: str | None = ANY_RULE) -> Chain:
    """1-4 levels of computes (approved, default, targets), rules and environment overrides
    that follow every rule except (about half the time) ``broken``; by default a random one."""
    if broken == ANY_RULE:
        broken = draw(st.sampled_from((None, *BREAKABLE)))

    def breaks(rule: str) -> bool:  # break ``rule`` at this chance to? (three times in four)
        assert rule in BREAKABLE, rule
        return broken == rule and chance(draw, 75)

    n = draw(st.integers(1, 4))
    levels = draw(level_sequences(n, broken=broken == "level order"))
    dirs = draw(st.lists(st.sampled_from(DIRS), min_size=n, max_size=n))
    files = [os.path.join(d, f"level{i}.yaml") for i, d in enumerate(dirs[:-1])]
    files.append(os.path.join(dirs[-1], "product.yaml"))

    docs: list[dict[str, Any]] = []
    allowed: list[str] = []  # the effective approved set so far
    default: str | None = None
    configured: set[str] = set()  # computes with a target (and a type) so far
    for i in range(n):
        doc: dict[str, Any] = {"apiVersion": "floe.dev/v1", "kind": "Manifest"}
        if i > 0:
            doc["extends"] = relative_extends(files[i], files[i - 1])
        doc["metadata"] = {"name": f"level-{i}"}
        if levels[i] is not None:
            doc["metadata"]["level"] = levels[i]
        docs.append(doc)
        if i > 0 and not chance(draw, 60):
            continue  # no computes section: everything inherited
        computes: dict[str, Any] = {}
        parent_allowed = allowed
        if i == 0 or chance(draw, 50):
            if breaks("empty approved"):
                approved: list[str] = []
            elif i > 0 and breaks("approved not a subset of the parent's"):
                outside = one_of(draw, set(POOL) - set(allowed))
                approved = subset(draw, allowed) + ([outside] if outside else [])
            else:
                approved = subset(draw, POOL if i == 0 else allowed, min_size=1)
            computes["approved"] = approved
            allowed = [c for c in approved if i == 0 or c in allowed]
        must_reset = default is not None and default not in allowed
        if broken != "no default" and (i == 0 or must_reset or chance(draw, 40)):
            if breaks("default not approved at its level"):
                new_default = one_of(draw, set(POOL) - set(allowed))
            elif must_reset and breaks("inherited default not approved"):
                new_default = None
            else:
                new_default = one_of(draw, allowed)
            if new_default is not None:
                computes["default"] = default = new_default
        # the root configures what it approves (and maybe more); a level below only computes its
        # parent approved
        if i == 0:
            names = set(computes["approved"]) | set(subset(draw, POOL))
            if breaks("approved compute without target") and computes["approved"]:
                names.discard(draw(st.sampled_from(computes["approved"])))
        else:
            names = set(subset(draw, parent_allowed))
            if breaks("target of a compute the parent did not approve"):
                names |= {n for n in [one_of(draw, set(POOL) - set(parent_allowed))] if n}
        if names or chance(draw, 50):
            computes["targets"] = {name: draw(target_layer(i == 0, breaks)) for name in sorted(names)}
        configured |= {n for n, t in computes.get("targets", {}).items() if i == 0 and "type" in t}
        doc["computes"] = computes

    if breaks("no transforms"):
        holders = []
    else:
        holders = sorted({n - 1, *(i for i in range(n - 1) if chance(draw, 20))})
    for i in holders:
        rules = []
        for _ in range(draw(st.integers(1 if broken == "rule to an unapproved compute" else 0, 4))):
            rule: dict[str, Any] = {"select": draw(st.sampled_from(sorted(SELECTORS)))}
            if chance(draw, 20):
                rule["exclude"] = draw(st.sampled_from(sorted(SELECTORS)))
            compute = (
                one_of(draw, set(POOL) - set(allowed)) if breaks("rule to an unapproved compute") else None
            )
            rule["compute"] = compute or one_of(draw, allowed) or "c0"
            rules.append(rule)
        docs[i]["transforms"] = {"dbt_project": dbt_project, "assignments": rules}

    if chance(draw, 30) or broken in (
        "environment overrides an unknown compute",
        "unknown workload size in an environment",
    ):
        overrides: dict[str, Any] = {}
        names = set(subset(draw, configured))
        if breaks("environment overrides an unknown compute"):
            names |= {n for n in [one_of(draw, set(POOL) - configured)] if n}
        for name in sorted(names):
            override: dict[str, Any] = {}
            if breaks("unknown workload size in an environment"):
                override["workload_size"] = "xl"
            elif chance(draw, 50):
                override["workload_size"] = draw(st.sampled_from(PRESETS))
            if chance(draw, 50):
                override["config"] = {"threads": draw(st.integers(1, 8))}
            overrides[name] = override
        environments: dict[str, Any] = {"prod": {"computes": overrides}}
        if chance(draw, 50):
            environments["dev"] = {}
        docs[-1]["environments"] = environments
    return Chain(files, docs)


@dataclass
class Outcome:
    load_problems: list[str]
    plan_problems: list[str]
    approved: list[str] | None  # computes.approved as the product sees it (the last level's list)
    effective: list[str] | None  # the intersection of every level's approved set, in that order
    default: str | None
    # (target, attribute) -> (value, index of the layer that set it last)
    set_by: dict[tuple[str, str], tuple[Any, int]]
    rules: list[dict[str, Any]]


def expected_outcome(chain: Chain) -> Outcome:
    """The README's rules, applied independently of floe_dagster to a generated chain."""
    docs = chain.docs
    problems: list[str] = []
    levels = [doc["metadata"].get("level", "product") for doc in docs]
    for parent, child in itertools.pairwise(levels):
        if parent == "product" or RANK[child] < RANK[parent]:
            problems.append(f"level {child} extends {parent}")

    allowed: list[str] | None = None
    approved = default = None
    set_by: dict[tuple[str, str], tuple[Any, int]] = {}
    for index, doc in enumerate(docs):
        computes = doc.get("computes")
        if computes is None:
            continue
        own = computes.get("approved")
        if own is not None and allowed is not None and not set(own) <= set(allowed):
            problems.append(f"layer {index} approves {own}, parent allows {allowed}")
        targets = computes.get("targets", {})
        if index > 0 and allowed is not None and not set(targets) <= set(allowed):
            problems.append(f"layer {index} configures {sorted(targets)}, parent allows {allowed}")
        if own is not None:
            allowed = [c for c in own if allowed is None or c in allowed]
            approved = own
        if computes.get("default") is not None:
            default = computes["default"]
            if allowed is not None and default not in allowed:
                problems.append(f"layer {index} default {default} not in {allowed}")
        for name, target in targets.items():
            set_by.setdefault((name, "workload_size"), ("small", -1))
            for attribute in ("type", "workload_size"):
                if attribute in target:
                    set_by[(name, attribute)] = (target[attribute], index)
            for key, value in target.get("config", {}).items():
                set_by[(name, f"config.{key}")] = (value, index)

    targets = sorted({name for name, _ in set_by})
    if not approved:
        problems.append("no (or an empty) computes.approved")
    if default is None:
        problems.append("no computes.default")
    elif approved and default not in approved:
        problems.append(f"default {default} not in {approved}")
    for name in approved or []:
        if name not in targets:
            problems.append(f"approved {name} has no target")
    for name in targets:
        if (name, "type") not in set_by:
            problems.append(f"target {name} has no type")
        if set_by[(name, "workload_size")][0] not in PRESETS:
            problems.append(f"target {name}: bad workload size")
        if set_by.get((name, "config.threads"), (1, 0))[0] < 1:
            problems.append(f"target {name}: threads < 1")
    for env, overrides in docs[-1].get("environments", {}).items():
        for name, override in overrides.get("computes", {}).items():
            if name not in targets:
                problems.append(f"environment {env} overrides unknown {name}")
            if override.get("workload_size", "small") not in PRESETS:
                problems.append(f"environment {env}: bad workload size for {name}")
    transforms = next((doc["transforms"] for doc in reversed(docs) if "transforms" in doc), None)
    if transforms is None:
        problems.append("no transforms")
    rules = transforms["assignments"] if transforms else []
    plan_problems = [
        f"rule {i + 1} -> {r['compute']}" for i, r in enumerate(rules) if r["compute"] not in (approved or [])
    ]
    return Outcome(problems, plan_problems, approved, allowed, default, set_by, rules)


def line_of(root: Path, file: str, line: int) -> str:
    return (root / file).read_text().splitlines()[line - 1]


def check_merged(loaded: Any, expected: Outcome, chain: Chain, root: Path) -> None:
    m = loaded.manifest
    assert m.computes.approved == expected.approved == expected.effective
    assert m.computes.default == expected.default
    assert [layer.path for layer in loaded.chain] == [(root / f).resolve() for f in chain.files]
    for (name, attribute), (value, index) in expected.set_by.items():
        target = m.computes.targets[name]
        if attribute.startswith("config."):
            key = attribute.removeprefix("config.")
            assert target.config[key] == value
            path: tuple[str, ...] = ("computes", "targets", name, "config", key)
        else:
            assert getattr(target, attribute) == value
            path = ("computes", "targets", name, attribute)
        if index >= 0:  # set in a file (not a default): the position is that file's line for it
            position = loaded.source_map.position(path)
            assert (root / position.file).resolve() == (root / chain.files[index]).resolve(), (path, position)
            key_text = path[-1] if not isinstance(value, str) else value
            assert str(key_text) in line_of(root, position.file, position.line), (path, position)
    approved_from = max(i for i, doc in enumerate(chain.docs) if "approved" in doc.get("computes", {}))
    for index in range(len(expected.approved or [])):
        position = loaded.source_map.position(("computes", "approved", index))
        assert (root / position.file).resolve() == (root / chain.files[approved_from]).resolve()


def check_plan(plan: Any, expected: Outcome) -> None:
    approved = set(expected.effective or [])
    assert sorted(t.name for t in plan.transforms) == sorted(MODELS), "exactly one assignment per model"
    assert len({t.unique_id for t in plan.transforms}) == len(MODELS)
    for t in plan.transforms:
        assert t.compute in approved, f"{t.name} runs on unapproved {t.compute}"
        compute, reason = expected.default, "default"
        for index, rule in enumerate(expected.rules):
            matched = SELECTORS[rule["select"]] - SELECTORS.get(rule.get("exclude") or "", frozenset())
            if t.name in matched:
                compute, reason = rule["compute"], f"rule {index + 1} ({rule['select']})"
                break
        assert (t.compute, t.reason) == (compute, reason), t
    assert plan.default_compute == expected.default
    assert set(plan.computes) == approved


def check_unapproved_rules(error: ManifestError, expected: Outcome, level: str) -> None:
    approved = expected.approved or []
    wanted = []
    for index, rule in enumerate(expected.rules):
        if rule["compute"] in approved:
            continue
        models = ", ".join(
            sorted(SELECTORS[rule["select"]] - SELECTORS.get(rule.get("exclude") or "", frozenset()))
        )
        wanted.append(
            f"rule {index + 1} ({rule['select']!r}) assigns model(s) [{models or 'none'}] to compute"
            f" '{rule['compute']}', which is not approved at level {level}; allowed: [{', '.join(approved)}]"
        )
    assert [p.message for p in error.problems] == wanted
    assert [p.path for p in error.problems] == [
        ("transforms", "assignments", i, "compute")
        for i, r in enumerate(expected.rules)
        if r["compute"] not in approved
    ]


def check_hierarchy(chain: Chain, demo_dbt: DemoDbt) -> None:
    """Load and plan ``chain``; compare the outcome with ``expected_outcome``."""
    expected = expected_outcome(chain)
    with fresh_directory() as root:
        write_chain(root, chain)
        try:
            loaded = load_manifest(chain.product, environment="dev", check_assignments=False)
        except ManifestError as error:
            assert_positions(error, root, chain)
            assert expected.load_problems, f"rejected a chain the rules allow:\n{error}"
            event("load_manifest: ManifestError")
            return
        assert not expected.load_problems, f"accepted a chain the rules forbid: {expected.load_problems}"
        check_merged(loaded, expected, chain, root)
        try:
            plan = compile_plan(loaded, demo_dbt.manifest)
        except ManifestError as error:
            assert_positions(error, root, chain)
            assert expected.plan_problems, f"rejected a plan the rules allow:\n{error}"
            check_unapproved_rules(error, expected, loaded.manifest.metadata.level)
            event("compile_plan: ManifestError")
            return
        assert (
            not expected.plan_problems
        ), f"accepted rules the chain does not approve: {expected.plan_problems}"
        check_plan(plan, expected)
        event(f"planned ({len(chain.files)} levels)")


@settings(SETTINGS, max_examples=60)
@given(data=st.data())
def test_random_hierarchies_that_follow_the_rules_load_and_plan(
    data: st.DataObject, demo_dbt: DemoDbt
) -> None:
    check_hierarchy(data.draw(hierarchies(str(demo_dbt.project), broken=None), label="chain"), demo_dbt)


@pytest.mark.parametrize("broken", BREAKABLE)
@settings(SETTINGS, max_examples=12)
@given(data=st.data())
def test_random_hierarchies_breaking_a_rule_fail_exactly_when_the_rules_say(
    data: st.DataObject, demo_dbt: DemoDbt, broken: str
) -> None:
    check_hierarchy(data.draw(hierarchies(str(demo_dbt.project), broken=broken), label="chain"), demo_dbt)


def test_selector_table_matches_dbt(demo_dbt: DemoDbt) -> None:
    """The oracle's selector table is what dbt's selector engine says about the demo project."""
    from dagster_dbt.utils import select_unique_ids

    dbt_project, dbt_manifest = demo_dbt
    names = {uid: node["name"] for uid, node in dbt_manifest["nodes"].items()}
    with contextlib.chdir(dbt_project):
        for selector, models in SELECTORS.items():
            found = select_unique_ids(
                select=selector, exclude="", selector="", project=None, manifest_json=dbt_manifest
            )
            assert {names[u] for u in found if u.startswith("model.")} == models, selector


# --- 2. invalid inputs --------------------------------------------------------------------------

VOCABULARY = (
    "apiVersion", "kind", "metadata", "name", "level", "extends", "computes", "approved", "default",
    "targets", "type", "config", "path", "threads", "workload_size", "timeout_seconds", "transforms",
    "dbt_project", "assignments", "select", "compute", "exclude", "environments", "dev", "prod",
    "catalogs", "metastores", "state_dir", "duckdb", "c0", "c1", "enterprise", "domain", "product",
    "floe.dev/v1", "Manifest", ":memory:", "tag:marts", "small", "huge",
)  # fmt: skip
texts = st.text(max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(),
    texts,
    st.sampled_from(VOCABULARY),
)
junk = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.one_of(st.sampled_from(VOCABULARY), texts), children, max_size=3),
    max_leaves=8,
)


def nodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from nodes(child, (*path, index))


def replace_at(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    container = value
    for part in path[:-1]:
        container = container[part]
    container[path[-1]] = new
    return value


FIXED_SCHEMA = {(), ("metadata",), ("computes",), ("transforms",)}  # mappings with fixed keys


def is_fixed_schema(path: tuple[Any, ...]) -> bool:
    """A mapping whose keys the schema fixes (not a name -> entry map, not plugin config)."""
    return (
        path in FIXED_SCHEMA
        or (len(path) == 3 and path[:2] == ("computes", "targets"))
        or (len(path) == 3 and path[:2] == ("transforms", "assignments"))
    )


MUTATIONS = ("junk", "drop", "unknown_key", "level", "extends", "header", "text", "bytes", "splice")


@st.composite
def mutated_chains(draw: st.DrawFn, dbt_project: str) -> tuple[Chain, bool]:
    """A generated chain with 1-3 mutations; True when one of them makes it certainly invalid.

    A mutation is certain to fail only on a layer the product still reaches: ``extends`` is
    changed only by the "extends" mutation (itself fatal), but a splice may break any line,
    so a fatal mutation counts only when no layer closer to the product was spliced.
    """
    chain = draw(hierarchies(dbt_project))
    n = len(chain.docs)
    fatal: set[int] = set()
    spliced: set[int] = set()
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, n - 1))
        doc = chain.docs[index]
        kind = draw(st.sampled_from(MUTATIONS))
        if index in chain.raw and kind not in ("text", "bytes"):
            kind = "splice"  # the file is text now
        if kind == "junk":
            paths = [path for path, _ in nodes(doc) if path and path[0] != "extends"]
            path = draw(st.sampled_from(paths))
            replace_at(doc, path, draw(junk))
        elif kind == "drop":
            keys = [
                (v, k) for p, v in nodes(doc) if isinstance(v, dict) for k in v if (p, k) != ((), "extends")
            ]
            if keys:
                mapping, key = draw(st.sampled_from(keys))
                del mapping[key]
        elif kind == "unknown_key":
            mappings = [v for p, v in nodes(doc) if isinstance(v, dict) and is_fixed_schema(p)]
            mapping = draw(st.sampled_from(mappings))
            mapping["x_" + draw(st.text(alphabet="abcdefgh_", min_size=1, max_size=6))] = draw(junk)
            fatal.add(index)
        elif kind == "level":
            if isinstance(doc.get("metadata"), dict):
                doc["metadata"]["level"] = draw(texts.filter(lambda s: s not in LEVELS))
                fatal.add(index)
        elif kind == "extends":
            how = draw(st.sampled_from(["missing", "self", "descendant", "junk"]))
            if how == "missing":
                doc["extends"] = draw(st.sampled_from(["nope.yaml", "../missing/x.yaml", "a/b/c/nope.yaml"]))
            elif how == "junk":
                doc["extends"] = draw(junk.filter(lambda v: not isinstance(v, str | type(None))))
            else:  # a cycle: this layer extends itself or a layer between it and the product
                target = index if how == "self" else draw(st.integers(index, n - 1))
                doc["extends"] = relative_extends(chain.files[index], chain.files[target])
            fatal.add(index)
        elif kind == "header":
            key, valid = draw(st.sampled_from([("apiVersion", "floe.dev/v1"), ("kind", "Manifest")]))
            doc[key] = draw(st.one_of(texts, st.sampled_from(["floe.dev/v2", "manifest", 1])))
            if doc[key] != valid:
                fatal.add(index)
        elif kind == "text":
            chain.raw[index] = draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
            fatal.add(index)
        elif kind == "bytes":
            chain.raw[index] = draw(st.binary(max_size=200))
            fatal.add(index)
        else:  # splice: replace up to 20 characters of the written YAML by up to 10 others
            raw = chain.raw.get(index)
            text = (
                dump_yaml(doc)
                if raw is None
                else raw.decode("utf-8", "replace")
                if isinstance(raw, bytes)
                else raw
            )
            start = draw(st.integers(0, len(text)))
            end = draw(st.integers(start, min(len(text), start + 20)))
            insert = draw(st.text(alphabet=":-[]{},&*!|>'\"#%@` \n\t?.abc012", max_size=10))
            chain.raw[index] = text[:start] + insert + text[end:]
            spliced.add(index)
    must_fail = any(i >= max(spliced, default=-1) for i in fatal)
    return chain, must_fail


def load_and_plan(chain: Chain, dbt_manifest: dict[str, Any]) -> None:
    loaded = load_manifest(chain.product, environment="dev", check_assignments=False)
    compile_plan(loaded, dbt_manifest)


@settings(SETTINGS, max_examples=250)
@given(data=st.data())
def test_invalid_chains_give_manifest_errors_with_positions(data: st.DataObject, demo_dbt: DemoDbt) -> None:
    dbt_project, dbt_manifest = demo_dbt
    chain, must_fail = data.draw(mutated_chains(str(dbt_project)), label="chain")
    with fresh_directory() as root:
        write_chain(root, chain)
        try:
            load_and_plan(chain, dbt_manifest)
        except ManifestError as error:
            assert_positions(error, root, chain)
            event(f"ManifestError ({'certain' if must_fail else 'possible'})")
            return
        assert not must_fail, "a certainly invalid chain was accepted"
        event("accepted")


@st.composite
def random_structures(draw: st.DrawFn) -> Any:
    """A YAML document from the manifest's vocabulary, sometimes with a valid header."""
    doc = draw(st.dictionaries(st.sampled_from(VOCABULARY), junk, max_size=8) if chance(draw, 80) else junk)
    if isinstance(doc, dict) and chance(draw, 50):
        doc = {"apiVersion": "floe.dev/v1", "kind": "Manifest", "metadata": {"name": "fuzz"}, **doc}
    return doc


@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_random_structures_give_manifest_errors_with_positions(
    data: st.DataObject, demo_dbt: DemoDbt
) -> None:
    """A random document as the product, alone or extending a valid parent."""
    dbt_project, dbt_manifest = demo_dbt
    doc = data.draw(random_structures(), label="product")
    if chance(data.draw, 50):
        chain = Chain(["product.yaml"], [doc])
    else:
        parent = data.draw(hierarchies(str(dbt_project)), label="parent")
        chain = Chain([*parent.files[:-1], "fuzz/product.yaml"], [*parent.docs[:-1], doc])
        if isinstance(doc, dict) and len(chain.files) > 1:
            doc["extends"] = relative_extends(chain.files[-1], chain.files[-2])
    with fresh_directory() as root:
        write_chain(root, chain)
        try:
            load_and_plan(chain, dbt_manifest)
        except ManifestError as error:
            assert_positions(error, root, chain)
            event("ManifestError")
        else:
            event("accepted")
