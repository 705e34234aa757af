{#- Columns a contract gained since sales_history was made (steps.add_history_columns decides
    which: nullable ones the table lacks). NULL on the rows already kept, so an older history
    still merges; columns are never dropped or retyped. One statement, one BigQuery table
    update (DuckDB gets one statement per column: sqlrender.to_duckdb).
    added: the contract's Column objects to add, in contract order. -#}
ALTER TABLE {{ t.sales_history }}
{% for col in added %}
  ADD COLUMN IF NOT EXISTS {{ col.name | q }} {{ col.type }}{{ "," if not loop.last }}
{% endfor %}
;
