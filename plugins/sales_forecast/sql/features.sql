-- The clean daily panel the trainer reads: one row per series per day, from the series' first
-- day to the last day in history. A day with no row means no sales (the store was closed or
-- nothing sold): target 0, is_gap_filled TRUE. Known-in-advance columns are filled by their
-- contract rule so no feature is ever NULL; observed-only columns stay NULL on filled days.
{% import "_macros.sql" as m %}
CREATE OR REPLACE TABLE {{ t.daily_sales_features }} AS
WITH bounds AS (
  SELECT {% for k in keys %}{{ k | q }}, {% endfor %}MIN({{ date | q }}) AS first_date
  FROM {{ t.sales_history }}
{% if keys %}
  GROUP BY {% for k in keys %}{{ k | q }}{% if not loop.last %}, {% endif %}{% endfor %}
{% endif %}
),
last_day AS (
  SELECT MAX({{ date | q }}) AS last_date FROM {{ t.sales_history }}
),
spine AS (
  SELECT {% for k in keys %}b.{{ k | q }}, {% endfor %}day AS {{ date | q }}
  FROM bounds AS b
  CROSS JOIN last_day AS l
  CROSS JOIN UNNEST(GENERATE_DATE_ARRAY(b.first_date, l.last_date)) AS day
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
    h.{{ date | q }} IS NULL AS is_gap_filled
  FROM spine AS s
  LEFT JOIN {{ t.sales_history }} AS h
    ON {% for k in keys %}h.{{ k | q }} = s.{{ k | q }} AND {% endfor %}h.{{ date | q }} = s.{{ date | q }}
)
SELECT
  {{ m.series_id(keys) }} AS series_id,
{% for k in keys %}
  {{ k | q }},
{% endfor %}
  {{ date | q }},
  CAST(COALESCE({{ target | q }}, 0) AS FLOAT64) AS {{ target | q }},
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
  is_gap_filled
FROM joined
WINDOW series AS ({% if keys %}PARTITION BY {% for k in keys %}{{ k | q }}{% if not loop.last %}, {% endif %}{% endfor %}{% endif %})
ORDER BY series_id, {{ date | q }};
