"""Call the serving app: a local server by URL, or a Vertex AI Endpoint, with the same body.

Examples::

    python -m serving.client --url http://127.0.0.1:8080 \\
        --instance store_id=S01,item_id=I003 --horizon 7
    python -m serving.client --url http://127.0.0.1:8080 --body request.json
    python -m serving.client --endpoint 1234567890 --project my-proj --region europe-west1 \\
        --body request.json            # Endpoint.predict (google-cloud-aiplatform)
    python -m serving.client --endpoint projects/p/locations/r/endpoints/123 --raw --body -

``--body`` is a JSON file (``-``: stdin) of ``{"instances": [...], "parameters": {...}}``;
``--instance`` (repeatable) builds one from ``key=value`` pairs instead. The response is
printed as JSON. Exit codes: 0 ok, 1 the server answered with an error, 2 bad arguments.
"""

from __future__ import annotations

__all__ = ["build_body", "main", "predict_local", "predict_vertex"]

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any


class ClientError(Exception):
    """The server answered with an error (its JSON body is in ``body``)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {json.dumps(body)}")
        self.status = status
        self.body = body


def _scalar(text: str) -> Any:
    # Keys are strings unless they are plain integers (INT64 key columns); "007" stays text.
    try:
        number = int(text)
    except ValueError:
        return text
    return number if str(number) == text else text


def build_body(
    instances: Sequence[str],
    *,
    horizon: int | None = None,
    level: int | None = None,
    levels: Sequence[int] | None = None,
) -> dict[str, Any]:
    """A request body from ``key=value[,key=value]`` instance strings."""
    out = []
    for text in instances:
        inst: dict[str, Any] = {}
        for pair in filter(None, text.split(",")):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"--instance expects key=value pairs, got {pair!r}")
            inst[key.strip()] = _scalar(value.strip())
        if horizon is not None:
            inst["horizon"] = horizon
        out.append(inst)
    body: dict[str, Any] = {"instances": out}
    params: dict[str, Any] = {}
    if level is not None:
        params["level"] = level
    if levels:
        params["levels"] = list(levels)
    if params:
        body["parameters"] = params
    return body


def predict_local(
    url: str,
    body: dict[str, Any],
    *,
    route: str = "/predict",
    timeout: float = 30.0,
    client: Any = None,
) -> dict[str, Any]:
    """POST ``body`` to ``url`` + ``route``; ``client`` is any httpx-style client (tests)."""
    import httpx

    target = url.rstrip("/") + route
    try:
        if client is None:
            with httpx.Client(timeout=timeout) as own:
                response = own.post(target, json=body)
        else:
            response = client.post(target, json=body)
    except httpx.TransportError as exc:
        raise ConnectionError(f"cannot reach {target}: {exc}") from None
    try:
        payload = response.json()
    except ValueError:
        payload = {"error": response.text[:500]}
    if response.status_code >= 400:
        raise ClientError(response.status_code, payload)
    return payload


def predict_vertex(
    endpoint: str,
    body: dict[str, Any],
    *,
    project: str | None = None,
    region: str | None = None,
    raw: bool = False,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Send ``body`` to a Vertex AI Endpoint (the same body a local server takes).

    ``raw`` uses ``Endpoint.raw_predict`` and returns the container's own answer (with our
    ``model_version``); otherwise ``Endpoint.predict``, whose answer Vertex rebuilds (its
    ``model_version_id`` and ``deployed_model_id`` are added here).
    """
    from google.cloud import aiplatform

    ep = aiplatform.Endpoint(endpoint, project=project, location=region)
    if raw:
        response = ep.raw_predict(
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            timeout=timeout,
        )
        payload = response.json()
        if response.status_code >= 400:
            raise ClientError(response.status_code, payload)
        return payload
    prediction = ep.predict(
        instances=body["instances"], parameters=body.get("parameters"), timeout=timeout
    )
    return {
        # Vertex hands back protobuf-backed maps; a JSON round trip makes them plain.
        "predictions": json.loads(json.dumps(list(prediction.predictions), default=dict)),
        "model_version": prediction.model_version_id,
        "deployed_model_id": prediction.deployed_model_id,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m serving.client", description=__doc__.split("\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a local/remote server, e.g. http://127.0.0.1:8080")
    where.add_argument("--endpoint", help="Vertex AI Endpoint id or resource name")
    p.add_argument(
        "--route",
        default=os.environ.get("AIP_PREDICT_ROUTE", "/predict"),
        help="predict route with --url (default: $AIP_PREDICT_ROUTE or /predict)",
    )
    p.add_argument("--project", help="GCP project (with --endpoint given as an id)")
    p.add_argument("--region", help="Vertex AI region (with --endpoint given as an id)")
    p.add_argument("--raw", action="store_true", help="Endpoint.raw_predict (the container's body)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--body", help="request JSON file, - for stdin")
    what.add_argument(
        "--instance",
        action="append",
        help="key=value[,key=value] (repeatable), e.g. store_id=S01,item_id=I003",
    )
    p.add_argument("--horizon", type=int, help="days to forecast, with --instance")
    p.add_argument("--level", type=int, help="interval level reported as lower/upper")
    p.add_argument("--levels", help="extra interval levels, comma separated, e.g. 80,95")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    return p


def main(argv: Sequence[str] | None = None, *, client: Any = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.body:
            text = sys.stdin.read() if args.body == "-" else open(args.body).read()
            body = json.loads(text)
        else:
            levels = [int(v) for v in args.levels.split(",")] if args.levels else None
            body = build_body(args.instance, horizon=args.horizon, level=args.level, levels=levels)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.url:
            out = predict_local(
                args.url, body, route=args.route, timeout=args.timeout, client=client
            )
        else:
            out = predict_vertex(
                args.endpoint,
                body,
                project=args.project,
                region=args.region,
                raw=args.raw,
                timeout=args.timeout,
            )
    except ClientError as exc:
        print(json.dumps(exc.body, indent=2), file=sys.stderr)
        print(f"error: the server answered HTTP {exc.status}", file=sys.stderr)
        return 1
    except ConnectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
