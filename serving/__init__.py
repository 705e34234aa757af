"""The serving image: a FastAPI app over the trainer's ``Forecaster`` (Vertex AI contract).

``python -m serving`` starts it; see :mod:`serving.app` and docs/serving.md. This package
never imports Airflow or anything under ``plugins/``, and loads nothing at import time.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
