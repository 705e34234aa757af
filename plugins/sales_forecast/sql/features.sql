-- The clean daily panel the trainer reads: one row per series per day, from the series' first
-- day to the last day of data on or before the run's cut-off (never later: a stray future date
-- cannot stretch the spine). The data is history plus this run's accepted rows (they win over
-- history for the same series and day); they join history itself only once the run has
-- succeeded (merge_history), so a failed run leaves history as it was.
-- A day with no row means no sales (the store was closed or nothing sold): target 0,
-- is_gap_filled TRUE. A day whose row was quarantined is unknown instead: target NULL,
-- is_unknown TRUE (the trainer fills it for features only and never learns or scores it).
-- Known-in-advance columns are filled by their contract rule so no feature is ever NULL;
-- observed-only columns stay NULL on filled days.
-- No ORDER BY: a table has no row order (on BigQuery a top-level sort of a large panel only
-- risks "Resources exceeded"); the trainer sorts the panel itself (trainer/panel.py).
-- The bigquery switch (set by the gcp warehouse; off for DuckDB, which has no such clauses):
-- partition by month, so the trainer's date filter prunes and years of days stay far below
-- BigQuery's 10,000 partitions per table and 4,000 per job, and cluster by series.
-- CREATE OR REPLACE cannot change a table's partitioning ("Cannot replace a table with a
-- different partitioning spec"), so a table built before it is dropped first; nothing reads
-- it before this step ends.
{% import "_macros.sql" as m %}
{% set incoming = incoming | default(true) %}
{% set bigquery = bigquery | default(false) %}
{% if bigquery %}
DROP TABLE IF EXISTS {{ t.daily_sales_features }};

CREATE OR REPLACE TABLE {{ t.daily_sales_features }}
PARTITION BY DATE_TRUNC({{ date | q }}, MONTH)
CLUSTER BY series_id
AS
{% else %}
CREATE OR REPLACE TABLE {{ t.daily_sales_features }} AS
{% endif %}
WITH
{% if incoming %}
incoming AS (
  SELECT {% for col in columns %}{{ col.name | q }}{% if not loop.last %}, {% endif %}{% endfor %}
  FROM {{ t.staging_checked }}
  WHERE reject_reason IS NULL AND {{ date | q }} <= @cutoff
),
{% endif %}
data AS (
  SELECT {% for col in columns %}h.{{ col.name | q }}{% if not loop.last %}, {% endif %}{% endfor %}
  FROM {{ t.sales_history }} AS h
  WHERE h.{{ date | q }} <= @cutoff
{% if incoming %}
    AND NOT EXISTS (
      SELECT 1 FROM incoming AS i
      WHERE {% for k in keys %}i.{{ k | q }} = h.{{ k | q }} AND {% endfor %}i.{{ date | q }} = h.{{ date | q }}
    )
  UNION ALL
  SELECT {% for col in columns %}{{ col.name | q }}{% if not loop.last %}, {% endif %}{% endfor %} FROM incoming
{% endif %}
),
bounds AS (
  SELECT {% for k in keys %}{{ k | q }}, {% endfor %}MIN({{ date | q }}) AS first_date
  FROM data
{% if keys %}
  GROUP BY {% for k in keys %}{{ k | q }}{% if not loop.last %}, {% endif %}{% endfor %}
{% endif %}
),
last_day AS (
  SELECT MAX({{ date | q }}) AS last_date FROM data
),
spine AS (
  SELECT {% for k in keys %}b.{{ k | q }}, {% endfor %}day AS {{ date | q }}
  FROM bounds AS b
  CROSS JOIN last_day AS l
  CROSS JOIN UNNEST(GENERATE_DATE_ARRAY(b.first_date, l.last_date)) AS day
),
unknown AS (
  SELECT DISTINCT {% for k in keys %}{{ k | q }}, {% endfor %}{{ date | q }}
  FROM {{ t.unknown_days }}
  WHERE {{ date | q }} <= @cutoff
),
joined AS (
  SELECT
{% for k in keys %}
    s.{{ k | q }},
{% endfor %}
    s.{{ date | q }},
{% for col in value_columns %}
    h.{{ col.name | q }},
{% endfor %}
    h.{{ date | q }} IS NULL AND u.{{ date | q }} IS NULL AS is_gap_filled,
    h.{{ date | q }} IS NULL AND u.{{ date | q }} IS NOT NULL AS is_unknown
  FROM spine AS s
  LEFT JOIN data AS h
    ON {% for k in keys %}h.{{ k | q }} = s.{{ k | q }} AND {% endfor %}h.{{ date | q }} = s.{{ date | q }}
  LEFT JOIN unknown AS u
    ON {% for k in keys %}u.{{ k | q }} = s.{{ k | q }} AND {% endfor %}u.{{ date | q }} = s.{{ date | q }}
)
SELECT
  {{ m.series_id(keys) }} AS series_id,
{% for k in keys %}
  {{ k | q }},
{% endfor %}
  {{ date | q }},
  CAST(IF(is_unknown, NULL, COALESCE({{ target | q }}, 0)) AS FLOAT64) AS {{ target | q }},
{% for col in value_columns if col.role != "target" %}
{% if col.role == "known" and col.future_fill == "last" %}
  COALESCE(
    {{ col.name | q }},
    LAST_VALUE({{ col.name | q }} IGNORE NULLS) OVER (series ORDER BY {{ date | q }} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
    FIRST_VALUE({{ col.name | q }} IGNORE NULLS) OVER (series ORDER BY {{ date | q }} ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
  ) AS {{ col.name | q }},
{% elif col.role == "known" and col.future_fill == "weekend" %}
  COALESCE({{ col.name | q }}, FORMAT_DATE('%u', {{ date | q }}) IN ('6', '7')) AS {{ col.name | q }},
{% elif col.role == "known" %}
  {# zero, false and value:<x>: the contract's typed constant (FALSE for zero on a BOOL). #}
  COALESCE({{ col.name | q }}, {{ col | fill_literal }}) AS {{ col.name | q }},
{% else %}
  {{ col.name | q }},
{% endif %}
{% endfor %}
  is_gap_filled,
  is_unknown
FROM joined
WINDOW series AS ({% if keys %}PARTITION BY {% for k in keys %}{{ k | q }}{% if not loop.last %}, {% endif %}{% endfor %}{% endif %});
