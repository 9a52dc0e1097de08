{#-
  floe's Spark compute (floe_dagster/computes/spark.py). Both macros do nothing on other adapters.

  floe_spark_attach_catalogs(): run by on-run-start. Before dbt starts, floe writes one JSON line
  per Iceberg table ({"relation": "ns.table", "sql": [...]}: views over exactly the data files of
  the table's current snapshot) and passes the file as FLOE_SPARK_ATTACH. Spark reads that file;
  the relations this invocation builds itself are skipped.
-#}
{% macro floe_spark_attach_catalogs() %}
  {%- if execute and target.type == 'spark' -%}
    {%- set path = env_var('FLOE_SPARK_ATTACH', '') -%}
    {%- if not path -%}
      {{ exceptions.raise_compiler_error(
          "floe: FLOE_SPARK_ATTACH is not set. Run the Spark compute through floe (Dagster), or first "
          ~ "`eval $(python -m floe_dagster.computes.spark MANIFEST " ~ target.name ~ ")`") }}
    {%- endif -%}
    {%- set building = [] -%}
    {%- for node in graph.nodes.values() -%}
      {%- if node.unique_id in selected_resources and node.resource_type in ['model', 'seed', 'snapshot'] -%}
        {%- do building.append((node.schema ~ '.' ~ (node.alias or node.name)) | lower) -%}
      {%- endif -%}
    {%- endfor -%}
    {%- set lines = run_query("select value from text.`" ~ path | replace('`', '``') ~ "`") -%}
    {%- for line in lines -%}
      {%- set item = fromjson(line[0]) -%}
      {%- if item['relation'] not in building -%}
        {%- for statement in item['sql'] -%}
          {%- do run_query(statement) -%}
        {%- endfor -%}
      {%- endif -%}
    {%- endfor -%}
    {{ log("floe: attached " ~ (lines | length) ~ " catalog table(s) to Spark", info=True) }}
  {%- endif -%}
{% endmacro %}


{#-
  The demo's models are materialised `external` (on DuckDB: written to Parquet and committed to
  the Iceberg catalog by floe's dbt-duckdb plugin). On Spark, `external` is a Parquet table in the
  session's warehouse (FLOE_SPARK_WAREHOUSE, whatever the location of its database in a Hive
  Metastore); floe commits it to the catalog after the dbt process ends.
-#}
{% materialization external, adapter='spark' %}
  {%- set target_relation = this.incorporate(type='table') -%}
  {{ run_hooks(pre_hooks) }}
  {% call statement('drop_existing') -%}
    drop table if exists {{ target_relation }}
  {%- endcall %}
  {%- set warehouse = env_var('FLOE_SPARK_WAREHOUSE', '') -%}
  {% call statement('main') -%}
    create table {{ target_relation }} using parquet
    {%- if warehouse %}
    location '{{ warehouse | replace("\\", "\\\\") | replace("'", "\\'") }}/{{ target_relation.schema }}.db/{{ target_relation.identifier }}'
    {%- endif %}
    as
    {{ sql }}
  {%- endcall %}
  {{ run_hooks(post_hooks) }}
  {% do persist_docs(target_relation, model) %}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
