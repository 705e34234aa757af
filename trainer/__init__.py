"""Trainer image for daily sales forecasting: features, model, train / predict / backtest.

This package never imports Airflow or anything under ``plugins/``: it meets the Airflow side
only through command-line arguments, ``AIP_*`` environment variables, files and tables.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
