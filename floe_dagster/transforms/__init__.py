"""dbt side of the flow: profiles from the manifest, the dbt manifest, Iceberg outputs."""
