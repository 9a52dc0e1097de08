"""Engines floe does not support as computes, and why (shown by ``floe plugins`` and by the error
for a manifest that names one). Each reason was checked on this project's pins; see docs/engines.md.

No plugin is registered for these: a compute that cannot run dbt is not offered as one.
"""

from __future__ import annotations

__all__ = ["UNSUPPORTED_COMPUTES"]

UNSUPPORTED_COMPUTES: dict[str, str] = {
    "druid": (
        "Apache Druid: no dbt adapter exists on PyPI (no dbt-druid), and Druid's SQL goes over HTTP/Avatica,"
        " not a protocol another adapter speaks; no Druid server runs here either"
    ),
    "dameng": (
        "DaMeng (DM8): every dbt-dameng release (1.4.5 the newest) requires dbt-core==1.4.5, so it cannot"
        " install beside dbt-core 1.11; DM speaks its own protocol (dmPython), no server runs here"
    ),
    "gbase8s": ("GBase 8s: an Informix-protocol database with no dbt adapter on PyPI and no server here"),
    "tdsql": (
        "TDSQL (MySQL edition): no dbt-tdsql adapter exists, and the MySQL adapters that could serve it"
        " (dbt-mysql <=1.7, dbt-tidb <=1.6) require an older dbt-core than 1.11"
    ),
}
