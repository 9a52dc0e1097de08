"""The demo's raw data, created as Iceberg tables in the manifest's catalog (idempotent)."""

from __future__ import annotations

import logging
import random
from datetime import date, timedelta

import pyarrow as pa

from floe_dagster.core.errors import NotFoundError
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plan.builders import build_catalog
from floe_dagster.plugins.catalog import CatalogPlugin

logger = logging.getLogger("floe_dagster")

RAW_NAMESPACE = ("raw",)
FIRST_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus"]
LAST_NAMES = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Hamilton",
    "Wirth",
]
STATUSES = ["placed", "shipped", "completed", "completed", "returned"]
METHODS = ["credit_card", "bank_transfer", "coupon", "gift_card"]


def demo_tables(customers: int = 100, orders: int = 300, seed: int = 42) -> dict[str, pa.Table]:
    """Deterministic raw tables: the same arguments give the same rows."""
    rng = random.Random(seed)
    customer_rows = {
        "id": list(range(1, customers + 1)),
        "first_name": [rng.choice(FIRST_NAMES) for _ in range(customers)],
        "last_name": [rng.choice(LAST_NAMES) for _ in range(customers)],
    }
    start = date(2026, 1, 1)
    order_rows = {
        "id": list(range(1, orders + 1)),
        "customer_id": [rng.randint(1, customers) for _ in range(orders)],
        "order_date": [start + timedelta(days=rng.randint(0, 300)) for _ in range(orders)],
        "status": [rng.choice(STATUSES) for _ in range(orders)],
    }
    payment_rows: dict[str, list[object]] = {
        "id": [],
        "order_id": [],
        "payment_method": [],
        "amount_cents": [],
    }
    for order_id in range(1, orders + 1):
        for _ in range(rng.choice([1, 1, 1, 2])):
            payment_rows["id"].append(len(payment_rows["id"]) + 1)
            payment_rows["order_id"].append(order_id)
            payment_rows["payment_method"].append(rng.choice(METHODS))
            payment_rows["amount_cents"].append(rng.randint(100, 10_000))
    return {
        "customers": pa.table(
            customer_rows,
            schema=pa.schema([("id", pa.int64()), ("first_name", pa.string()), ("last_name", pa.string())]),
        ),
        "orders": pa.table(
            order_rows,
            schema=pa.schema(
                [
                    ("id", pa.int64()),
                    ("customer_id", pa.int64()),
                    ("order_date", pa.date32()),
                    ("status", pa.string()),
                ]
            ),
        ),
        "payments": pa.table(
            payment_rows,
            schema=pa.schema(
                [
                    ("id", pa.int64()),
                    ("order_id", pa.int64()),
                    ("payment_method", pa.string()),
                    ("amount_cents", pa.int64()),
                ]
            ),
        ),
    }


def seed_catalog(catalog: CatalogPlugin) -> list[str]:
    """Create the raw tables that do not exist yet; existing ones are left as they are."""
    catalog.ensure_namespace(RAW_NAMESPACE)
    created = []
    for name, data in demo_tables().items():
        identifier = (*RAW_NAMESPACE, name)
        try:
            catalog.load_table(identifier)
            continue
        except NotFoundError:
            pass
        catalog.create_table(identifier, schema=data.schema).append(data)
        created.append(".".join(identifier))
        logger.info("floe: created raw table %s (%d rows)", ".".join(identifier), data.num_rows)
    return created


def seed_demo(loaded: LoadedManifest) -> list[str]:
    name = loaded.manifest.transforms.catalog or next(iter(loaded.manifest.catalogs))
    return seed_catalog(build_catalog(loaded, name))
