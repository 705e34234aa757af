"""Tables and files behind one small interface: DuckDB, BigQuery, Parquet/CSV, any fsspec URI.

Table URIs (:mod:`trainer.io.table_uri`, read and written by :mod:`trainer.io.tables`):

- ``duckdb:///abs/path/warehouse.duckdb?table=name`` (read-only reads, retried while a writer
  holds the file lock; connections are closed as soon as the statement is done),
- ``bq://project.dataset.table`` (``BIGQUERY_EMULATOR_HOST`` switches to an emulator),
- ``/local/or/gs://path/file.parquet`` or ``.csv``.

Files and folders (:mod:`trainer.io.files`) are plain fsspec paths (local, ``gs://``,
``memory://`` in tests).
"""
