-- Rejected rows of this run, with their reason and raw values. Re-running a run, or loading
-- the same file again, replaces them instead of piling up copies.
DELETE FROM {{ t.rejected_rows }} WHERE run_id = @run_id OR source_file = @source_file;

DELETE FROM {{ t.unknown_days }} WHERE run_id = @run_id OR source_file = @source_file;

-- A rejected row whose series and day can be read makes that day unknown (not a zero).
INSERT INTO {{ t.unknown_days }} ({% for k in keys %}{{ k | q }}, {% endfor %}{{ date | q }}, run_id, source_file, reason)
SELECT {% for k in keys %}{{ k | q }}, {% endfor %}{{ date | q }}, @run_id, _source_file, reject_reason
FROM {{ t.staging_checked }}
WHERE reject_reason IS NOT NULL{% for k in keys %} AND {{ k | q }} IS NOT NULL{% endfor %} AND {{ date | q }} IS NOT NULL;

INSERT INTO {{ t.rejected_rows }} (run_id, source_file, source_row, reason, raw_record, rejected_at)
SELECT
  @run_id,
  _source_file,
  _source_row,
  reject_reason,
  TO_JSON_STRING(STRUCT({% for col in columns %}{{ ("raw__" ~ col.name) | q }} AS {{ col.name | q }}{% if not loop.last %}, {% endif %}{% endfor %})),
  CURRENT_TIMESTAMP()
FROM {{ t.staging_checked }}
WHERE reject_reason IS NOT NULL;

INSERT INTO {{ t.rejected_rows }} (run_id, source_file, source_row, reason, raw_record, rejected_at)
SELECT @run_id, @source_file, source_row, reason, raw_line, CURRENT_TIMESTAMP()
FROM {{ t.staging_malformed }};
