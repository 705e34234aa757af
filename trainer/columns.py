"""Column names of the long frame mlforecast fits on and forecasts from.

The panel speaks the contract's names (``series_id``, the date column, the target); the model
frame built from it (:func:`trainer.feature_spec.to_model_frame`) uses mlforecast's own.
"""

from __future__ import annotations

__all__ = ["ID", "TARGET", "TIME"]

ID, TIME, TARGET = "unique_id", "ds", "y"
