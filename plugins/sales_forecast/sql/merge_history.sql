-- Accepted rows join the accumulated history once the run has succeeded: a (series, date)
-- already stored is updated (a corrected re-delivery wins), a new one is inserted. Nothing else
-- in history is touched. The run's own staging tables are dropped afterwards (drop_staging).
MERGE {{ t.sales_history }} AS h
USING (
  SELECT
{% for col in columns %}
    {{ col.name | q }},
{% endfor %}
    @run_id AS _loaded_by_run,
    CURRENT_TIMESTAMP() AS _loaded_at
  FROM {{ t.staging_checked }}
  WHERE reject_reason IS NULL
) AS s
ON {% for k in keys %}h.{{ k | q }} = s.{{ k | q }} AND {% endfor %}h.{{ date | q }} = s.{{ date | q }}
WHEN MATCHED THEN UPDATE SET
{% for col in value_columns %}
  {{ col.name | q }} = s.{{ col.name | q }},
{% endfor %}
  _loaded_by_run = s._loaded_by_run,
  _loaded_at = s._loaded_at
WHEN NOT MATCHED THEN INSERT ({% for col in columns %}{{ col.name | q }}, {% endfor %}_loaded_by_run, _loaded_at)
  VALUES ({% for col in columns %}s.{{ col.name | q }}, {% endfor %}s._loaded_by_run, s._loaded_at);
