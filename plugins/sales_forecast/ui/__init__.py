"""The "Sales forecasts" view of the Airflow UI: read-only data access and its FastAPI app.

The Airflow plugin itself is ``plugins/forecasts_view.py`` (the one file under ``plugins/`` that
Airflow's plugin loader imports); this package lives inside ``sales_forecast/``, which
``plugins/.airflowignore`` keeps out of the loader, so its modules are never imported as
top-level plugin modules.
"""
