{#- A typed source (Parquet, a BigQuery table) -> this run's all-STRING staging table, so
    validate.sql checks its values by the very rules a CSV's text gets (sources.py).
    staged: sources.StagedColumn list, in the contract's order. Either bq_table (a checked
    "project.dataset.table" whose column names are checked identifiers) or, locally, the temp
    table _typed_source, whose columns the loader has already renamed to the contract's names by
    position and which carries _source_row and _source_file. A staged column of kind "absent"
    (an optional column the source leaves out) is NULL. -#}
{% set fmt = (c.date_format or "%Y-%m-%d") | lit %}
CREATE OR REPLACE TABLE {{ t.staging }} AS
SELECT
  _source_row,
  _source_file,
{% for s in staged %}
{% set v = s.name | q %}
{% if s.kind == "absent" %}
  CAST(NULL AS STRING) AS {{ v }}{{ "," if not loop.last }}
{% elif s.kind == "date" %}
  FORMAT_DATE({{ fmt }}, {{ v }}) AS {{ v }}{{ "," if not loop.last }}
{% elif s.kind == "timestamp" %}
  IF(CAST({{ v }} AS TIME) = TIME '00:00:00', FORMAT_DATE({{ fmt }}, CAST({{ v }} AS DATE)), CAST({{ v }} AS STRING)) AS {{ v }}{{ "," if not loop.last }}
{% else %}
  CAST({{ v }} AS STRING) AS {{ v }}{{ "," if not loop.last }}
{% endif %}
{% endfor %}
FROM
{% if bq_table %}
  (
    SELECT
      ROW_NUMBER() OVER () AS _source_row,
      {{ source_uri | lit }} AS _source_file,
{% for s in staged if s.kind != "absent" %}
      {{ s.source | q }} AS {{ s.name | q }}{{ "," if not loop.last }}
{% endfor %}
    FROM {{ bq_table | q }}
  )
{% else %}
  _typed_source
{% endif %}
;
