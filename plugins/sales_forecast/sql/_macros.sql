{# Typed value of a raw STRING column, NULL when it does not parse: the rule of
   sf_contract.scalars.parse_scalar, with its tokens (sf_contract.constants) passed in by
   sqlrender. The patterns come before the casts because DuckDB's TRY_CAST takes more than
   BigQuery's SAFE_CAST ("1_000"; "1.5" as the INT64 2). #}
{% macro typed(col, raw) -%}
{% if col.type == "DATE" -%}
IF(REGEXP_CONTAINS(TRIM({{ raw }}), {{ DATE_PATTERN | regex }}), SAFE_CAST(TRIM({{ raw }}) AS DATE), NULL)
{%- elif col.type == "FLOAT64" -%}
IF(NOT REGEXP_CONTAINS(TRIM({{ raw }}), {{ FLOAT_PATTERN | regex }}) OR IS_NAN(SAFE_CAST(TRIM({{ raw }}) AS FLOAT64)) OR IS_INF(SAFE_CAST(TRIM({{ raw }}) AS FLOAT64)), NULL, SAFE_CAST(TRIM({{ raw }}) AS FLOAT64))
{%- elif col.type == "INT64" -%}
IF(REGEXP_CONTAINS(TRIM({{ raw }}), {{ INT_PATTERN | regex }}), SAFE_CAST(TRIM({{ raw }}) AS INT64), NULL)
{%- elif col.type == "BOOL" -%}
CASE WHEN LOWER(TRIM({{ raw }})) IN ({{ BOOL_TRUE | map("lit") | join(", ") }}) THEN TRUE WHEN LOWER(TRIM({{ raw }})) IN ({{ BOOL_FALSE | map("lit") | join(", ") }}) THEN FALSE END
{%- else -%}
NULLIF(TRIM({{ raw }}), '')
{%- endif %}
{%- endmacro %}

{# TRUE when a raw value is absent (NULL or blank). #}
{% macro blank(raw) -%}
({{ raw }} IS NULL OR TRIM({{ raw }}) = '')
{%- endmacro %}

{# The series id (sf_contract.scalars.series_id): key values joined by KEY_SEPARATOR, or
   SINGLE_SERIES_ID for a dataset without keys. #}
{% macro series_id(keys, alias="") -%}
{% if keys -%}
ARRAY_TO_STRING([{% for k in keys %}CAST({{ alias }}{{ k | q }} AS STRING){% if not loop.last %}, {% endif %}{% endfor %}], {{ KEY_SEPARATOR | lit }})
{%- else -%}
{{ SINGLE_SERIES_ID | lit }}
{%- endif %}
{%- endmacro %}
