"""``python -m serving``: uvicorn on ``SF_SERVING_HOST``:``AIP_HTTP_PORT`` (127.0.0.1:8080)."""

from __future__ import annotations

import logging
import sys


def main() -> int:
    import uvicorn
    from pydantic import ValidationError

    from serving.app import create_app
    from serving.config import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        # A bad environment variable is a one-line message, not a traceback.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"error: invalid serving settings: {problems}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        # One process: the model lives in memory, and the hot swap replaces it in this
        # process. Scale out with more replicas (Vertex AI) rather than workers.
        workers=1,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
