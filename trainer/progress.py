"""Start and end log lines around a long step, with its elapsed time.

Under Airflow each stdout/stderr line of the trainer is a task log line, and on Vertex AI a
Cloud Logging entry: a fit of a minute with no line in between looks hung. Each fit logs one
line when it starts and one when it ends (``done in 12.3 s``), never one per iteration.
"""

from __future__ import annotations

__all__ = ["elapsed_text", "progress"]

import contextlib
import logging
import time
from collections.abc import Iterator


def elapsed_text(seconds: float) -> str:
    """``12.3 s`` under a minute, ``2 min 05 s`` above."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


@contextlib.contextmanager
def progress(
    log: logging.Logger,
    what: str,
    i: int | None = None,
    n: int | None = None,
    *,
    detail: str = "",
) -> Iterator[None]:
    """Log ``<what> <i>/<n> <detail> ...`` on entry and ``... done in <elapsed>`` on exit.

    ``i`` / ``n`` (1-based) say how far along a loop is; leave them out for a single step.
    A step that raises logs ``failed after <elapsed>`` (at warning level, the error itself is
    reported by whoever handles it) and the exception goes on.
    """
    label = what if i is None else f"{what} {i}/{n}" if n is not None else f"{what} {i}"
    if detail:
        label = f"{label} {detail}"
    log.info("%s ...", label)
    start = time.perf_counter()
    try:
        yield
    except BaseException:
        log.warning("%s failed after %s", label, elapsed_text(time.perf_counter() - start))
        raise
    log.info("%s done in %s", label, elapsed_text(time.perf_counter() - start))
