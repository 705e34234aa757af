-- Types every staged (all-STRING) row and gives each rejected row its reasons.
-- Policy: a row is rejected when a required value is missing, a value does not parse as its
-- contract type, the target is negative, or its (series, date) key also appears on another row
-- with different values (all copies rejected: there is no telling which one is right), a key
-- holds the series-id separator, or the date is after the run's cut-off.
-- An exact copy of an accepted row is rejected as a duplicate and the first copy is kept.
{% import "_macros.sql" as m %}
CREATE OR REPLACE TABLE {{ t.staging_checked }} AS
WITH typed AS (
  SELECT
    _source_row,
    _source_file,
{% for col in columns %}
    {{ col.name | q }} AS {{ ("raw__" ~ col.name) | q }},
    {{ m.typed(col, col.name | q, c.date_format) }} AS {{ col.name | q }},
{% endfor %}
    -- COALESCE: DuckDB returns NULL where BigQuery returns '' for an all-NULL array.
    COALESCE(ARRAY_TO_STRING([
{% for col in columns %}
{% if not col.nullable %}
      IF({{ m.blank(col.name | q) }}, '{{ col.name }}: missing value', NULL),
{% endif %}
      IF(NOT {{ m.blank(col.name | q) }} AND ({{ m.typed(col, col.name | q, c.date_format) }}) IS NULL,
         CONCAT('{{ col.name }}: ', '"', SUBSTR({{ col.name | q }}, 1, 60), '" is not a valid {{ col.type }}'{% if col.type == "DATE" %}, {{ (" (expected " ~ m.expected_date(c.date_format) ~ ")") | lit }}{% endif %}), NULL),
{% endfor %}
{% for k in keys %}
      -- Two key tuples joined by the separator could share a series id (sf_contract.scalars).
      IF(STRPOS({{ k | q }}, {{ KEY_SEPARATOR | lit }}) > 0,
         CONCAT('{{ k }}: contains ', {{ KEY_SEPARATOR | lit }}, ', the series-id separator'), NULL),
{% endfor %}
      -- A day after the run's cut-off has not happened yet for this run: accepting it would
      -- stretch every series to that day with made-up zero-sales days.
      IF(({{ m.typed(date_col, date | q, c.date_format) }}) > @cutoff,
         CONCAT('{{ date }}: ', TRIM({{ date | q }}), ' is after the cut-off of this run, ', CAST(@cutoff AS STRING)), NULL),
      IF(SAFE_CAST(TRIM({{ target | q }}) AS FLOAT64) < 0, '{{ target }}: negative value', NULL)
    ], '; '), '') AS row_reasons
  FROM {{ t.staging }}
),
keyed AS (
  SELECT
    *,
    COUNT(*) OVER key_window AS key_count,
    MIN(fingerprint) OVER key_window AS min_fp,
    MAX(fingerprint) OVER key_window AS max_fp,
    FIRST_VALUE(_source_row) OVER (key_window ORDER BY _source_row) AS first_row
  FROM (
    SELECT
      *,
      TO_JSON_STRING(STRUCT({% for col in columns %}{{ col.name | q }}{% if not loop.last %}, {% endif %}{% endfor %})) AS fingerprint
    FROM typed
    WHERE row_reasons = ''
  )
  WINDOW key_window AS (PARTITION BY {% for k in keys %}{{ k | q }}, {% endfor %}{{ date | q }})
),
checked AS (
  SELECT
    typed.* EXCEPT (row_reasons),
    NULLIF(CASE
      WHEN typed.row_reasons != '' THEN typed.row_reasons
      WHEN keyed.key_count > 1 AND keyed.min_fp != keyed.max_fp
        THEN CONCAT('duplicate key with conflicting values (', CAST(keyed.key_count AS STRING), ' rows for this series and date)')
      WHEN keyed.key_count > 1 AND typed._source_row != keyed.first_row
        THEN CONCAT('exact duplicate of row ', CAST(keyed.first_row AS STRING))
      ELSE ''
    END, '') AS reject_reason
  FROM typed
  LEFT JOIN keyed USING (_source_row)
)
SELECT * FROM checked;
