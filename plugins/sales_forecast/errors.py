"""The two ways a step stops early that are not bugs.

Steps never import Airflow: the task wrappers turn a :class:`DataError` into a failed task
without retries (retrying a bad file does not fix it) and :class:`SkipStep` into a skipped task.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "SkipStep"]


class DataError(Exception):
    """The input is wrong (not the code, not the infrastructure): fail now, do not retry."""


class SkipStep(Exception):
    """The step has nothing to do in this run (e.g. deploy not enabled)."""


class ConfigError(ValueError):
    """A setting is missing or invalid: the message names what to set. Retrying won't help."""
