-- Per series of this run's file: its rows, and its rejected rows whose date cannot be read
-- (no day to mark unknown, so a hole the features would read as a day without sales). Only
-- series with such rows are listed; rows whose keys cannot be read count in the run's total.
{% import "_macros.sql" as m %}
SELECT
  {{ m.series_id(keys) }} AS series_id,
  COUNT(*) AS `rows`,
  COUNTIF(reject_reason IS NOT NULL AND {{ date | q }} IS NULL) AS unplaced
FROM {{ t.staging_checked }}
WHERE TRUE{% for k in keys %} AND {{ k | q }} IS NOT NULL{% endfor +%}
{% if keys %}
GROUP BY 1
{% endif %}
HAVING COUNTIF(reject_reason IS NOT NULL AND {{ date | q }} IS NULL) > 0
