"""Writing tables: the one Iceberg writer (``iceberg.py``) for dbt model outputs and the ingest."""
