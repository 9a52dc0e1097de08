"""Incremental ingest of object-store tables into Iceberg: the cursor (``cursor.py``) and the
per-table pipeline (``table.py``); the Dagster assets are ``dagster_stage/ingest.py``."""
