"""``python -m serving.batch``: the online endpoint's predictor over a file or table of instances.

The same instances as ``POST /predict`` (one JSON object per line of a JSONL file, or one row per
instance of a table: its columns are the instance's fields, the series keys and ``horizon``),
the same model loading (a registry alias or version, every file's sha256 checked, or a model
folder), the same predictor, in chunks, so a batch and an online request give the same
forecasts for the same instance. Progress is logged per chunk.

Outputs (``--output``):

- ``*.jsonl``: one line per instance, ``{"instance": ..., "prediction": ...}`` (Vertex AI batch
  prediction's layout), or ``{"instance": ..., "error": ...}`` for an instance the predictor
  refused (its message, as the online API would answer);
- a table (``duckdb://...?table=``, ``bq://``, ``.parquet``, ``.csv``): one row per instance and
  forecast day (``batch_id, model_version, series_id``, the keys, ``date, forecast, lower,
  upper``); rows of an earlier run with the same ``--batch-id`` are replaced.

A chunk the predictor refuses as a whole is retried instance by instance, so one bad instance
costs only its own line; the exit status is 2 when every instance failed.
"""

from __future__ import annotations

__all__ = ["BatchResult", "main", "read_instances", "run_batch"]

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.errors import RequestError
from serving.predictor import Predictor, quiet_expected_warnings
from serving.schemas import PredictRequest

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 500


@dataclass
class BatchResult:
    """What a batch run did (also printed as JSON by the command)."""

    model_version: str
    instances: int = 0
    predicted: int = 0
    failed: int = 0
    rows: int = 0
    output: str = ""
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "instances": self.instances,
            "predicted": self.predicted,
            "failed": self.failed,
            "rows": self.rows,
            "output": self.output,
            "first_errors": self.errors[:5],
        }


def _plain(value: Any) -> Any:
    """A table cell as JSON would carry it (NaN/None: absent; numpy scalars: Python)."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()[:10]
    return value


def read_instances(uri: str) -> list[dict[str, Any]]:
    """The instances of a JSONL file (one object per line) or of a table (one per row)."""
    path = uri.removeprefix("file://")
    if path.endswith((".jsonl", ".json")) and "://" not in path:
        out = []
        with open(path, encoding="utf-8") as handle:
            for n, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{uri}: line {n}: not JSON ({exc.msg})") from None
                if not isinstance(item, dict):
                    raise ValueError(f"{uri}: line {n}: an instance is a JSON object")
                out.append(item)
        return out
    from trainer.io.tables import read_table

    frame = read_table(uri)
    rows = []
    for record in frame.to_dict(orient="records"):
        rows.append({k: v for k, v in ((k, _plain(v)) for k, v in record.items()) if v is not None})
    return rows


def _chunks(
    items: Sequence[dict[str, Any]], size: int
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    for start in range(0, len(items), size):
        yield start, list(items[start : start + size])


def _predict(
    predictor: Predictor, instances: list[dict[str, Any]], parameters: dict[str, Any] | None
) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"instances": instances}
    if parameters:
        body["parameters"] = parameters
    request = PredictRequest.model_validate(body)
    # No work budget offline: a series may appear as often as the file has it.
    n = len(instances)
    content, _ = predictor.predict(request, max_instances=n, max_series_repeats=n)
    return list(json.loads(content)["predictions"])


def _message(exc: Exception) -> str:
    if isinstance(exc, RequestError):
        return str(exc)
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"
    return f"{type(exc).__name__}: {exc}"


def run_batch(
    predictor: Predictor,
    instances: Sequence[dict[str, Any]],
    output: str,
    *,
    batch_id: str = "batch",
    chunk_size: int = DEFAULT_CHUNK,
    parameters: dict[str, Any] | None = None,
) -> BatchResult:
    """Predict every instance in chunks of ``chunk_size`` and write ``output``."""
    from pydantic import ValidationError

    if chunk_size < 1:
        raise ValueError(f"chunk size must be >= 1, got {chunk_size}")
    result = BatchResult(model_version=predictor.version, instances=len(instances), output=output)
    lines: list[dict[str, Any]] = []
    started = time.monotonic()
    for start, chunk in _chunks(instances, chunk_size):
        try:
            answers: list[dict[str, Any] | str] = list(_predict(predictor, chunk, parameters))
        except (RequestError, ValidationError):
            # One bad instance refuses its whole request online; here it costs only itself.
            answers = []
            for inst in chunk:
                try:
                    answers.append(_predict(predictor, [inst], parameters)[0])
                except (RequestError, ValidationError) as exc:
                    answers.append(_message(exc))
        for k, (inst, answer) in enumerate(zip(chunk, answers, strict=True)):
            if isinstance(answer, str):
                result.failed += 1
                result.errors.append(f"instance {start + k}: {answer}")
                lines.append({"instance": inst, "error": answer})
            else:
                result.predicted += 1
                lines.append({"instance": inst, "prediction": answer})
        done = start + len(chunk)
        log.info(
            "batch %s: %d/%d instances (%.0f%%), %d failed, %.1f s",
            batch_id,
            done,
            len(instances),
            100.0 * done / max(len(instances), 1),
            result.failed,
            time.monotonic() - started,
        )
    result.rows = _write(lines, output, batch_id, predictor)
    return result


def _write(lines: list[dict[str, Any]], output: str, batch_id: str, predictor: Predictor) -> int:
    if output.endswith(".jsonl"):
        path = Path(output.removeprefix("file://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(json.dumps(line, separators=(",", ":")) + "\n")
        tmp.replace(path)  # a reader sees the old file or the whole new one
        return len(lines)
    import pandas as pd

    from trainer.io.tables import write_table

    keys = list(predictor.keys)
    rows = []
    for line in lines:
        pred = line.get("prediction")
        if pred is None:
            continue
        for point in pred["forecasts"]:
            rows.append(
                {
                    "batch_id": batch_id,
                    "model_version": predictor.version,
                    "series_id": pred["series_id"],
                    **{k: pred.get(k) for k in keys},
                    "date": point["date"],
                    "forecast": point["forecast"],
                    "lower": point["lower"],
                    "upper": point["upper"],
                }
            )
    columns = ["batch_id", "model_version", "series_id", *keys, "date", "forecast"]
    frame = pd.DataFrame(rows, columns=[*columns, "lower", "upper"])
    frame["date"] = pd.to_datetime(frame["date"])
    write_table(frame, output, replace_where={"batch_id": batch_id}, date_columns=["date"])
    return len(frame)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serving.batch", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--input", required=True, help="instances: a .jsonl file or a table URI")
    parser.add_argument("--output", required=True, help="a .jsonl file or a table URI")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model-dir", help="a model folder (default: the registry's alias)")
    source.add_argument("--version", help="a registry version (default: the alias')")
    parser.add_argument("--alias", default=None, help="registry alias (default: production)")
    parser.add_argument("--batch-id", default="batch", help="rows of this id are replaced")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK, help="instances per call")
    parser.add_argument("--level", type=int, help="the interval level reported (default 80)")
    parser.add_argument(
        "--horizon", type=int, help="days for instances that give none (default: the model's)"
    )
    return parser


def load_predictor(
    *, model_dir: str | None = None, version: str | None = None, alias: str | None = None
) -> Predictor:
    """The predictor the online app would serve: sha256-checked against the registry."""
    from serving.config import Settings
    from serving.model_store import ModelRecord, ModelStore, read_registry

    if model_dir:
        # A folder: its manifest.json's sums are checked when it has one (the serving rule).
        store = ModelStore(Settings(storage_uri=model_dir))
        record = ModelRecord(version=None, uri=model_dir, expected=None, source=model_dir)
        return store.load_record(record).predictor
    settings = Settings(alias=alias) if alias else Settings()
    record = read_registry(settings.registry_path, settings.alias, version)
    return ModelStore(settings).load_record(record).predictor


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quiet_expected_warnings()
    from serving.errors import IntegrityError, ModelNotReady

    try:
        predictor = load_predictor(model_dir=args.model_dir, version=args.version, alias=args.alias)
        instances = read_instances(args.input)
        if not instances:
            raise ValueError(f"{args.input}: no instances")
        result = run_batch(
            predictor,
            instances,
            args.output,
            batch_id=args.batch_id,
            chunk_size=args.chunk_size,
            parameters={k: v for k, v in (("level", args.level), ("horizon", args.horizon)) if v}
            or None,
        )
    except (ModelNotReady, IntegrityError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.summary()))
    return 2 if result.predicted == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
