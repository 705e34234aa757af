"""The GCP platform: GCS, BigQuery and Vertex AI behind the steps' interfaces, and the Google
provider's operators where they earn their place, grouped by task.

| module             | holds                                                               |
|--------------------|---------------------------------------------------------------------|
| ``config``         | ``GcpConfig``: the ``gcp_*`` settings rendered and checked per task  |
| ``run``            | ``GcpRun`` and ``resolve_gcp_run``: one task run's names and platform |
| ``storage``        | ``GcsStore`` (object store), ``gs://`` URI rules                     |
| ``warehouse``      | ``BigQueryWarehouse``: the SQL steps' ``run_script`` / ``query``     |
| ``registry``       | ``VertexModelRegistry``: which version is in production              |
| ``load``           | ``load_to_staging``: numbering the CSV, ``GCSToBigQueryOperator``    |
| ``trainer_jobs``   | ``train`` / ``backtest_and_gate`` / ``forecast``: Vertex AI, Cloud Run |
| ``register``       | ``register``: promotion with sha256 manifest, ``UploadModelOperator`` |
| ``deploy``         | ``deploy``: endpoint, ``DeployModelOperator``, the production alias  |
| ``tasks``          | ``gcp_daily_tasks``: the eight tasks                                 |

Every decision the tasks make is :mod:`sales_forecast.decisions`, called through
:mod:`sales_forecast.steps`, as on the local platform.
"""
