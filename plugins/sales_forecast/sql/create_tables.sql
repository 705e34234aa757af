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

-- Days whose row was quarantined: not "no sales" but unknown until a good row arrives. The
-- features leave their target NULL (is_unknown), so no model learns or is scored on them.
CREATE TABLE IF NOT EXISTS {{ t.unknown_days }} (
{% for k in keys %}
  {{ k | q }} {{ c.column(k).type }},
{% endfor %}
  {{ date | q }} DATE,
  run_id STRING,
  source_file STRING,
  reason STRING
);

-- This run's CSV lines the loader could not split into columns (the load step fills it).
CREATE TABLE IF NOT EXISTS {{ t.staging_malformed }} (
  source_row INT64,
  reason STRING,
  raw_line STRING
);
