{# Typed value of a raw STRING column, NULL when it does not parse. #}
{% macro typed(col, raw) -%}
{% if col.type == "DATE" -%}
IF(REGEXP_CONTAINS(TRIM({{ raw }}), r'^\d{4}-\d{2}-\d{2}$'), SAFE_CAST(TRIM({{ raw }}) AS DATE), NULL)
{%- elif col.type == "FLOAT64" -%}
IF(IS_NAN(SAFE_CAST(TRIM({{ raw }}) AS FLOAT64)) OR IS_INF(SAFE_CAST(TRIM({{ raw }}) AS FLOAT64)), NULL, SAFE_CAST(TRIM({{ raw }}) AS FLOAT64))
{%- elif col.type == "INT64" -%}
SAFE_CAST(TRIM({{ raw }}) AS INT64)
{%- elif col.type == "BOOL" -%}
CASE WHEN LOWER(TRIM({{ raw }})) IN ('true', 't', '1', 'yes', 'y') THEN TRUE WHEN LOWER(TRIM({{ raw }})) IN ('false', 'f', '0', 'no', 'n') THEN FALSE END
{%- else -%}
NULLIF(TRIM({{ raw }}), '')
{%- endif %}
{%- endmacro %}

{# TRUE when a raw value is absent (NULL or blank). #}
{% macro blank(raw) -%}
({{ raw }} IS NULL OR TRIM({{ raw }}) = '')
{%- endmacro %}

{# The series id: key values joined by "|", or "total" for a single-series dataset. #}
{% macro series_id(keys, alias="") -%}
{% if keys -%}
ARRAY_TO_STRING([{% for k in keys %}CAST({{ alias }}{{ k | q }} AS STRING){% if not loop.last %}, {% endif %}{% endfor %}], '|')
{%- else -%}
'total'
{%- endif %}
{%- endmacro %}
