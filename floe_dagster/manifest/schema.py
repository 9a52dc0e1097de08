"""The manifest, version 1, as pydantic models.

Enterprise -> domain -> product: the sections below are shaped so that ``extends:`` (a parent
manifest) and ``environments:`` (per-environment config overrides) slot in beside them.
Plugin ``config`` blocks are validated by each plugin's own config model (see loader.py), so
this schema stays the same whatever plugins are installed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from floe_dagster.core.durations import check_window, parse_duration
from floe_dagster.core.errors import FloeError
from floe_dagster.manifest.executor import ExecutorConfig
from floe_dagster.plugins.data_versions import DataVersionMode
from floe_dagster.plugins.factory import infer_metastore_provider
from floe_dagster.plugins.redaction import masked

API_VERSION = "floe.dev/v1"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def __repr_args__(self) -> Any:
        # a plugin's raw config may hold a literal secret: a repr shows it as **********
        for name, value in super().__repr_args__():
            yield name, (masked(value) if name == "config" else value)


class Metadata(StrictModel):
    name: str = Field(
        min_length=1, description="Name of this platform / data product.", examples=["jaffle-lakehouse"]
    )
    level: Literal["enterprise", "domain", "product"] = "product"
    description: str | None = None
    owners: list[str] = Field(default_factory=list, examples=[["data-team@example.com"]])


class PluginEntry(StrictModel):
    type: str = Field(description="Plugin type: an entry-point name (see `floe plugins`).")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Validated by the plugin's config model."
    )


class CatalogEntry(PluginEntry):
    """An Iceberg catalog (``floe.catalogs`` entry points)."""

    type: str = Field(description="Catalog plugin type (see `floe plugins`).", examples=["sql"])


class ComputeTarget(PluginEntry):
    """A compute engine used as one dbt target (``floe.computes`` entry points)."""

    type: str = Field(description="Compute plugin type (see `floe plugins`).", examples=["duckdb"])
    workload_size: str = Field("small", description="Resource preset: small, medium or large.")


_APPROVED_EXAMPLE = ["duckdb", "spark"]
_TARGETS_EXAMPLE = {"duckdb": {"type": "duckdb", "config": {"path": ".floe/lakehouse.duckdb"}}}


class ComputesSection(StrictModel):
    approved: list[str] = Field(
        min_length=1, description="Compute names transforms may run on.", examples=[_APPROVED_EXAMPLE]
    )
    default: str = Field(
        description="Compute for transforms no rule selects; must be approved.", examples=["duckdb"]
    )
    targets: dict[str, ComputeTarget] = Field(default_factory=dict, examples=[_TARGETS_EXAMPLE])


_DURATION = "A duration: <number><unit> parts, unit s, m, h, d or w (e.g. 36h, 1d12h, 90m)."


class FreshnessWindow(StrictModel):
    """How old an asset may get: failing after ``fail_after``, warning after ``warn_after``."""

    fail_after: str | None = Field(None, description=_DURATION)
    warn_after: str | None = Field(None, description=_DURATION + " Shorter than fail_after.")

    @field_validator("fail_after", "warn_after")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)  # a ValueError points at this value's file:line:col
        return value

    @model_validator(mode="after")
    def _warn_before_fail(self) -> FreshnessWindow:
        check_window(self.fail_after, self.warn_after)
        return self


class MetastoreFreshness(FreshnessWindow):
    """Freshness of a metastore's tables, judged by each table's own last commit or DDL time."""

    namespaces: dict[str, FreshnessWindow] = Field(
        default_factory=dict,
        description="Per namespace glob (e.g. 'raw', 'sales_*'); the first match wins over the metastore's.",
    )


class DataVersionSettings(StrictModel):
    """``data_version`` written like ``freshness``: a default and per namespace glob overrides."""

    default: DataVersionMode = Field("auto", description="The mode of namespaces no glob matches.")
    namespaces: dict[str, DataVersionMode] = Field(
        default_factory=dict, description="Per namespace glob (e.g. 'raw_*'); the first match wins."
    )


class TransformFreshness(FreshnessWindow):
    """Freshness of the dbt models a selector picks (the first matching rule wins)."""

    select: str = Field(min_length=1, description="dbt selector, e.g. 'tag:marts'.")
    exclude: str | None = None


def _table_name(value: str) -> str:
    namespace, _, table = value.rpartition(".")
    if not namespace or not table or any(not part for part in namespace.split(".")):
        raise ValueError(f"'{value}' is not a table name; write <namespace>.<table>, e.g. sales.orders")
    return value


def _asset_key_path(value: str) -> str:
    if not value or any(not part.strip() for part in value.split("/")):
        raise ValueError(
            f"'{value}' is not an asset key; write its parts separated by '/', e.g. lake/sales/orders"
        )
    return value


def _key_part(value: str) -> str:
    if not value.strip() or "/" in value:
        raise ValueError(f"'{value}' is not an asset key part; use a non-empty name without '/'")
    return value


class ChangeFeedOptions(StrictModel):
    """How a metastore's observation sensor uses the connector's change feed (docs/change-feeds.md)."""

    enabled: bool = Field(
        True,
        description=(
            "Observe through the connector's change feed when it declares one (Hive notification log,"
            " S3 event notifications on an SQS queue, Iceberg metadata locations); false: a full scan"
            " every tick."
        ),
    )
    reconcile_interval_seconds: int = Field(
        3600,
        ge=60,
        description=(
            "Seconds between two full reconciliation scans of a metastore observed through its change"
            " feed; they catch writers that bypass the metastore (files written without a DDL)."
        ),
    )
    page_size: int = Field(
        1000, ge=1, le=10000, description="Events read per call of the feed (get_next_notification, ...)."
    )


class MetastoreEntry(PluginEntry):
    """A metastore whose tables become observable source assets (``floe.metastores``).

    Asset keys: ``<metastore>/<namespace parts>/<table>`` by default; ``asset_key_prefix``
    replaces the ``<metastore>`` part, and ``asset_keys`` names single tables' keys outright.
    """

    type: str = Field(  # type: ignore[assignment]  # filled by _infer_type when omitted
        None,
        description=(
            "Connector type (`floe plugins`). May be omitted when the config implies it:"
            " catalog -> iceberg, a thrift:// uri -> hive, catalog_id -> glue,"
            " project + service -> dataproc, bucket -> s3."
        ),
    )
    asset_key_prefix: list[Annotated[str, AfterValidator(_key_part)]] | None = Field(
        None,
        min_length=1,
        description=(
            "Asset key parts before <namespace parts>/<table> instead of the metastore's name,"
            " e.g. [warehouse, legacy]."
        ),
    )
    asset_keys: dict[
        Annotated[str, AfterValidator(_table_name)], Annotated[str, AfterValidator(_asset_key_path)]
    ] = Field(
        default_factory=dict,
        description=(
            "Asset keys of single tables: <namespace>.<table> -> a key written with '/'"
            " (e.g. 'sales.orders': 'finance/orders'); wins over asset_key_prefix."
        ),
    )
    include: list[str] = Field(default_factory=lambda: ["*"], description="Glob patterns on namespace.table.")
    exclude: list[str] = Field(default_factory=list)
    batch_size: int = Field(100, ge=1, le=1000, description="Tables fetched per batched call.")
    observe_interval_seconds: int = Field(
        300,
        ge=30,
        description=(
            "Minimum seconds between two ticks of this metastore's observation sensor, which records"
            " a data version for every table whose version changed."
        ),
    )
    freshness: MetastoreFreshness | None = Field(
        None, description="Freshness policies (and last-update checks) for this metastore's tables."
    )
    change_feed: ChangeFeedOptions = Field(
        default_factory=lambda: ChangeFeedOptions.model_validate({}),
        description="Observe what changed (the connector's change feed) instead of scanning every table.",
    )
    data_version: DataVersionMode | dict[str, DataVersionMode] | DataVersionSettings = Field(
        "auto",
        description=(
            "What Hive/Glue data versions follow: 'metadata' (what the metastore reports), 'storage'"
            " (plus a fingerprint of the files at the table's and its partitions' registered locations:"
            " count, bytes, newest modification time) or 'auto' (storage only for tables whose"
            " parameters carry no statistics). Or per namespace glob, e.g. {'raw_*': storage, '*':"
            " metadata}: the first match wins, auto otherwise; or {default: auto, namespaces: {...}}."
            " See docs/data-versions.md."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _infer_type(cls, data: Any) -> Any:
        """No ``type``: the metastore chokepoint infers it from the config, or says how to set it."""
        if not isinstance(data, dict) or data.get("type"):
            return data

        config = data.get("config")
        try:
            provider = infer_metastore_provider(config if isinstance(config, dict) else {})
        except FloeError as exc:
            raise ValueError(exc.message) from None
        return {**data, "type": provider}

    @field_validator("asset_keys")
    @classmethod
    def _unique_asset_keys(cls, value: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for table, key in value.items():
            if key in seen:
                raise ValueError(f"tables '{seen[key]}' and '{table}' are both mapped to asset key '{key}'")
            seen[key] = table
        return value


_RULE_EXAMPLE = {"select": "tag:marts", "compute": "duckdb"}


class AssignmentRule(StrictModel):
    select: str = Field(
        min_length=1,
        description="dbt selector, e.g. 'tag:heavy' or 'path:models/marts'.",
        examples=["tag:marts"],
    )
    compute: str = Field(description="An approved compute name.", examples=["duckdb"])
    exclude: str | None = None


class TransformsSection(StrictModel):
    dbt_project: str = Field(
        description="Path to the dbt project, relative to this manifest file.", examples=["../dbt_project"]
    )
    catalog: str | None = Field(
        None, description="Catalog where model outputs are written as Iceberg tables.", examples=["lakehouse"]
    )
    assignments: list[AssignmentRule] = Field(default_factory=list, examples=[[_RULE_EXAMPLE]])
    automation: Literal["on_upstream_change", "eager", "none"] = Field(
        "none",
        description=(
            "Declarative automation of every dbt transform: 'on_upstream_change' runs a model when an"
            " upstream source's data version changed or an upstream model was materialised (never on"
            " an observation repeating the same version; floe_dagster.dagster_stage.automation); 'eager' is"
            " Dagster's AutomationCondition.eager(); 'none' (default) automates nothing."
        ),
    )
    freshness: list[TransformFreshness] = Field(
        default_factory=list, description="Freshness policies for the dbt models each selector picks."
    )
    read_sources_at: Literal["latest", "observed"] = Field(
        "latest",
        description=(
            "Which version of each Iceberg/Delta/Hudi source a run's models read: 'latest' (default)"
            " the current one; 'observed' the version the source's latest observation recorded, so the"
            " upstream data version Dagster stores is the data that was read (docs/formats.md)."
        ),
    )


class TargetOverride(StrictModel):
    """Per-environment override of one compute target: config is merged key by key into the
    target's, unless ``type`` changes the engine (then the override's config is the whole config)."""

    type: str | None = Field(None, examples=["duckdb"])
    workload_size: str | None = Field(None, examples=["medium"])
    config: dict[str, Any] = Field(default_factory=dict, examples=[{"memory_limit": "8GB"}])


class CatalogOverride(StrictModel):
    config: dict[str, Any] = Field(default_factory=dict, examples=[{"warehouse": "s3://bucket/warehouse"}])


class EnvironmentOverrides(StrictModel):
    """What differs in one environment (dev, staging, prod, ...): config, never governance."""

    computes: dict[str, TargetOverride] = Field(
        default_factory=dict, examples=[{"duckdb": {"workload_size": "medium"}}]
    )
    catalogs: dict[str, CatalogOverride] = Field(
        default_factory=dict, examples=[{"lakehouse": {"config": {"warehouse": "s3://bucket/warehouse"}}}]
    )
    executor: ExecutorConfig | None = Field(
        None,
        description="How this environment runs its steps: in_process, multiprocess or k8s.",
        examples=[{"type": "k8s", "image": "registry.example.com/lakehouse:1.0.0", "namespace": "data"}],
    )


_CATALOGS_EXAMPLE = {"lakehouse": {"type": "sql", "config": {"uri": "sqlite:///.floe/catalog.db"}}}
_METASTORES_EXAMPLE = {"lakehouse": {"type": "iceberg", "config": {"catalog": "lakehouse"}}}
_ENVIRONMENTS_EXAMPLE = {"prod": {"computes": {"duckdb": {"workload_size": "medium"}}}}


class Manifest(StrictModel):
    """The effective manifest: one file, or a product merged with its ``extends:`` parents."""

    api_version: Literal["floe.dev/v1"] = Field(alias="apiVersion")
    kind: Literal["Manifest"]
    metadata: Metadata
    extends: str | None = Field(
        None, description="Parent manifest (path relative to this file): enterprise -> domain -> product."
    )
    catalogs: dict[str, CatalogEntry] = Field(default_factory=dict, examples=[_CATALOGS_EXAMPLE])
    computes: ComputesSection
    metastores: dict[str, MetastoreEntry] = Field(default_factory=dict, examples=[_METASTORES_EXAMPLE])
    transforms: TransformsSection
    environments: dict[str, EnvironmentOverrides] = Field(
        default_factory=dict,
        description="Per-environment config overrides; FLOE_ENV selects one (default dev).",
        examples=[_ENVIRONMENTS_EXAMPLE],
    )
    executor: ExecutorConfig | None = Field(
        None,
        description=(
            "How the jobs run their steps in every environment that sets none (default in_process):"
            " in_process, multiprocess or k8s."
        ),
        examples=["multiprocess"],
    )
    state_dir: str = Field(
        ".floe",
        description="Local state (generated profiles, DuckDB files, extension cache), relative to this file.",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CatalogLayer(StrictModel):
    type: str | None = Field(None, examples=["sql"])
    config: dict[str, Any] = Field(default_factory=dict, examples=[{"uri": "sqlite:///.floe/catalog.db"}])


class TargetLayer(StrictModel):
    type: str | None = Field(None, examples=["duckdb"])
    workload_size: str | None = Field(None, examples=["small"])
    config: dict[str, Any] = Field(default_factory=dict, examples=[{"threads": 2}])


class ComputesLayer(StrictModel):
    approved: list[str] | None = Field(
        None, description="A subset of the parent's approved computes.", examples=[_APPROVED_EXAMPLE]
    )
    default: str | None = Field(None, examples=["duckdb"])
    targets: dict[str, TargetLayer] = Field(default_factory=dict, examples=[_TARGETS_EXAMPLE])


class ManifestLayer(StrictModel):
    """One file of an ``extends:`` chain: every section optional, merged into its parent's."""

    api_version: Literal["floe.dev/v1"] = Field(alias="apiVersion")
    kind: Literal["Manifest"]
    metadata: Metadata
    extends: str | None = Field(None, examples=["domains/commerce.yaml"])
    catalogs: dict[str, CatalogLayer] = Field(default_factory=dict, examples=[_CATALOGS_EXAMPLE])
    computes: ComputesLayer | None = Field(
        None, examples=[{"approved": _APPROVED_EXAMPLE, "default": "duckdb"}]
    )
    metastores: dict[str, MetastoreEntry] = Field(default_factory=dict, examples=[_METASTORES_EXAMPLE])
    transforms: TransformsSection | None = Field(
        None, examples=[{"dbt_project": "../dbt_project", "assignments": [_RULE_EXAMPLE]}]
    )
    environments: dict[str, EnvironmentOverrides] = Field(
        default_factory=dict, examples=[_ENVIRONMENTS_EXAMPLE]
    )
    executor: ExecutorConfig | None = Field(None, examples=["multiprocess"])
    state_dir: str | None = Field(None, examples=[".floe"])

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def manifest_json_schema() -> dict[str, Any]:
    """The schema of one manifest file (any level of an extends chain), for editors."""
    schema = ManifestLayer.model_json_schema(by_alias=True)
    schema["title"] = "floe-dagster manifest (apiVersion floe.dev/v1)"
    return schema
