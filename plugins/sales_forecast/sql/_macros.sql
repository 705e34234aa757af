{# Typed value of a raw STRING column, NULL when it does not parse: the rule of
   sf_contract.scalars.parse_scalar, with its tokens (sf_contract.constants) passed in by
   sqlrender. The patterns come before the casts because DuckDB's TRY_CAST takes more than
   BigQuery's SAFE_CAST ("1_000"; "1.5" as the INT64 2). #}
{% macro typed(col, raw, date_format=none) -%}
{% if col.type == "DATE" -%}
{{ date_value(raw, date_format) }}
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

{# A DATE from raw text: YYYY-MM-DD, or the contract's date_format (sf_contract.scalars.
   parse_date). Not BigQuery's PARSE_DATE: sqlglot turns it into a DuckDB STRPTIME that does
   not even parse, and the two engines' strptime differ on what they accept. Instead the
   format's own regular expressions (compile_date_format, shared with Python) check the shape
   and pick out each field, and the ISO text built from them is cast, which both engines do
   alike (31/02/2025 -> 2025-02-31 -> NULL). Year 0000 is refused before the cast: DuckDB
   reads it as 1 BC, BigQuery and Python refuse it. #}
{% macro date_value(raw, date_format=none) -%}
{% set text = "TRIM(" ~ raw ~ ")" %}
{% if date_format is none -%}
IF(REGEXP_CONTAINS({{ text }}, {{ DATE_PATTERN | regex }}) AND SUBSTR({{ text }}, 1, 4) != '0000', SAFE_CAST({{ text }} AS DATE), NULL)
{%- else -%}
{% set f = compile_date_format(date_format) %}
{% set year = "REGEXP_EXTRACT(" ~ text ~ ", " ~ (f.field_pattern("Y") | regex) ~ ")" %}
IF(REGEXP_CONTAINS({{ text }}, {{ f.pattern | regex }}) AND {{ year }} != '0000', SAFE_CAST(CONCAT({{ year }}, '-', LPAD(REGEXP_EXTRACT({{ text }}, {{ f.field_pattern("m") | regex }}), 2, '0'), '-', LPAD(REGEXP_EXTRACT({{ text }}, {{ f.field_pattern("d") | regex }}), 2, '0')) AS DATE), NULL)
{%- endif %}
{%- endmacro %}

{# How a reject reason names what a DATE should look like. #}
{% macro expected_date(date_format=none) -%}
{{ date_format if date_format is not none else DATE_FORMAT }}
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
