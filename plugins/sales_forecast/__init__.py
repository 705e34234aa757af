"""Daily sales forecasting on Airflow: the code the DAGs use (Airflow side only)."""
