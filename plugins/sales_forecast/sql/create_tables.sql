-- Tables that accumulate across runs. Created once; never dropped by a run.
CREATE TABLE IF NOT EXISTS {{ t.sales_history }} (
{% for col in columns %}
  {{ col.name | q }} {{ col.type }},
{% endfor %}
  _loaded_by_run STRING,
  _loaded_at TIMESTAMP
);

CREATE TABLE IF NOT EXISTS {{ t.rejected_rows }} (
  run_id STRING,
  source_file STRING,
  source_row INT64,
  reason STRING,
  raw_record STRING,
  rejected_at TIMESTAMP
);

-- CSV lines the loader could not split into columns; the load step replaces its content.
CREATE TABLE IF NOT EXISTS {{ t.staging_malformed }} (
  source_row INT64,
  reason STRING,
  raw_line STRING
);
