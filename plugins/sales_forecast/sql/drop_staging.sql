-- The run's own staging tables, once their rows are in history (or the run is given up).
DROP TABLE IF EXISTS {{ t.staging }};
DROP TABLE IF EXISTS {{ t.staging_checked }};
DROP TABLE IF EXISTS {{ t.staging_malformed }};
DROP TABLE IF EXISTS {{ t.staging_source }};
