"""The local tuner: an Optuna study whose trials are real ``python -m trainer train`` runs.

Each trial runs the trainer's entrypoint as a subprocess (the same python and source tree as
:class:`~sales_forecast.platforms.local.SubprocessJobRunner`), with the trial's params as
flags, its own model folder under ``<run>/tuning/trials/<n>/`` (never the promoted models
folder), and ``CLOUD_ML_HP_METRIC_FILE`` pointing into that folder: the trial's value is what
the trainer reported through ``hypertune``, exactly as on Vertex AI.

The study lives in Optuna's SQLite storage at ``<run>/tuning/study.db``: a re-run of the task
loads it and runs only the trials still missing. A trial past its time budget is killed and
recorded as pruned; a trial that fails is recorded as failed and the study goes on.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sales_forecast.errors import DataError
from sales_forecast.tuning import (
    SPEC,
    BestTrial,
    LocalTrial,
    ParamSpec,
    best_local_trial,
    read_hpt_metric,
    trial_args,
)

__all__ = ["LocalTuner", "TrialFailed", "TuningOutcome", "optuna_distributions", "require_trials"]

log = logging.getLogger(__name__)

METRIC_FILE = "hypertune/output.metrics"
STUDY_FILE = "study.db"


class TrialFailed(RuntimeError):
    """A trial's trainer exited non-zero or reported no metric (recorded as failed)."""


@dataclass(frozen=True)
class TuningOutcome:
    study: str
    storage: str
    counts: dict[str, int]
    best: BestTrial | None


class LocalTuner:
    """Runs (or resumes) one study for one tuning run."""

    def __init__(
        self,
        *,
        python: str,
        src: Path,
        tuning_dir: Path,
        study: str,
        train_args: Sequence[str],
        metric: str,
        trials: int,
        parallel: int,
        trial_timeout_s: float,
        spec: Sequence[ParamSpec] = SPEC,
        seed: int = 0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.python = python
        self.src = Path(src)
        self.dir = Path(tuning_dir)
        self.study_name = study
        self.train_args = list(train_args)
        self.metric = metric
        self.trials = trials
        self.parallel = max(1, min(parallel, trials))
        self.trial_timeout_s = trial_timeout_s
        self.spec = tuple(spec)
        self.seed = seed
        self.env = dict(env or {})
        self._lock = threading.Lock()

    @property
    def storage_url(self) -> str:
        return f"sqlite:///{self.dir / STUDY_FILE}"

    def trial_dir(self, number: int) -> Path:
        return self.dir / "trials" / f"{number:04d}"

    # -- the study
    def _study(self) -> Any:
        import optuna

        self.dir.mkdir(parents=True, exist_ok=True)
        storage = optuna.storages.RDBStorage(
            self.storage_url,
            # Parallel trials are threads of this process writing to one SQLite file.
            engine_kwargs={"connect_args": {"timeout": 60}},
        )
        return optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            direction="minimize",
            sampler=optuna.samplers.TPESampler(seed=self.seed),
            load_if_exists=True,
        )

    @staticmethod
    def _counts(study: Any) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in study.get_trials(deepcopy=False):
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        return counts

    def _fail_stale(self, study: Any) -> None:
        """Trials left RUNNING by a killed task: no process runs them any more."""
        from optuna.trial import TrialState

        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            log.warning("trial %s was left running by an earlier try: recorded failed", t.number)
            study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)

    def run(self) -> TuningOutcome:
        from optuna.trial import TrialState

        study = self._study()
        self._fail_stale(study)
        finished = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
        done = len(study.get_trials(deepcopy=False, states=finished))
        remaining = max(0, self.trials - done)
        if done:
            log.info(
                "study %s resumed: %d of %d trials already finished %s",
                self.study_name,
                done,
                self.trials,
                self._counts(study),
            )
        if remaining:
            log.info(
                "study %s: %d trials to run, %d at a time, %.0f s each at most (storage %s)",
                self.study_name,
                remaining,
                self.parallel,
                self.trial_timeout_s,
                self.storage_url,
            )
            study.optimize(
                self._objective,
                n_trials=remaining,
                n_jobs=self.parallel,
                catch=(TrialFailed,),
                callbacks=[self._progress],
                gc_after_trial=False,
            )
        counts = self._counts(study)
        trials = [
            LocalTrial(t.number, t.state.name, t.value, t.params)
            for t in study.get_trials(deepcopy=False)
        ]
        best = None
        if counts.get("COMPLETE"):
            best = best_local_trial(
                trials, study=self.study_name, metric=self.metric, spec=self.spec
            )
        return TuningOutcome(self.study_name, self.storage_url, counts, best)

    def trials_doc(self) -> dict[str, Any]:
        """The study's trials as ``trials.json`` records them (what pick_best reads)."""
        study = self._study()
        return {
            "platform": "local",
            "study": self.study_name,
            "storage": self.storage_url,
            "metric": self.metric,
            "trials": [
                {
                    "number": t.number,
                    "state": t.state.name,
                    "value": t.value,
                    "params": dict(t.params),
                    "user_attrs": dict(t.user_attrs),
                }
                for t in study.get_trials(deepcopy=False)
            ],
        }

    def _progress(self, study: Any, trial: Any) -> None:
        from optuna.trial import TrialState

        finished = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
        ]
        complete = [t for t in finished if t.state == TrialState.COMPLETE]
        best = min(complete, key=lambda t: t.value) if complete else None
        log.info(
            "tuning progress: %d/%d trials done (trial %d %s%s); best so far: %s",
            len(finished),
            self.trials,
            trial.number,
            trial.state.name.lower(),
            f" {self.metric}={trial.value:.6f}" if trial.value is not None else "",
            f"trial {best.number} {self.metric}={best.value:.6f} {best.params}" if best else "none",
        )

    # -- one trial
    def _objective(self, trial: Any) -> float:
        import optuna

        params: dict[str, int | float] = {}
        for p in self.spec:
            if p.kind == "int":
                params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
            else:
                params[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
        folder = self.trial_dir(trial.number)
        folder.mkdir(parents=True, exist_ok=True)
        metric_file = folder / METRIC_FILE
        if metric_file.exists():  # a stale file must never stand for this trial's value
            metric_file.unlink()
        args = trial_args(self.train_args, params, self.metric, model_dir=str(folder / "model"))
        # Parallel trials share the cores: each gets its share of threads. LightGBM's OpenMP
        # threads spin while they wait, so 2 trials x 2 threads on 2 cores ran 10x slower.
        threads = max(1, (os.cpu_count() or 1) // self.parallel)
        if "--num-threads" not in args:
            args += ["--num-threads", str(threads)]
        cmd = [self.python, "-m", "trainer", "train", *args]
        env = {
            **os.environ,
            "PYTHONPATH": str(self.src),
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": str(threads),
            **self.env,
            "CLOUD_ML_HP_METRIC_FILE": str(metric_file),
            "CLOUD_ML_TRIAL_ID": str(trial.number),
            "CLOUD_ML_JOB_ID": f"{self.study_name}-trial-{trial.number}",
        }
        log.info("trial %d: %s", trial.number, params)
        start = time.monotonic()
        with open(folder / "trainer.log", "w") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=self.src,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own process group: a timeout kills the trainer and anything it started.
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=self.trial_timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                log.warning(
                    "trial %d stopped after its %.0f s budget: recorded pruned",
                    trial.number,
                    self.trial_timeout_s,
                )
                trial.set_user_attr("reason", f"time budget {self.trial_timeout_s:.0f} s")
                raise optuna.TrialPruned(f"over the {self.trial_timeout_s:.0f} s budget") from None
        elapsed = time.monotonic() - start
        trial.set_user_attr("seconds", round(elapsed, 1))
        trial.set_user_attr("folder", str(folder))
        if code != 0:
            tail = _tail(folder / "trainer.log")
            trial.set_user_attr("reason", f"exit {code}: {tail[-500:]}")
            log.warning("trial %d failed (exit %d): %s", trial.number, code, tail)
            raise TrialFailed(f"trial {trial.number}: trainer exit {code}")
        value = read_hpt_metric(
            metric_file.read_text() if metric_file.exists() else "", self.metric
        )
        if value is None:
            trial.set_user_attr("reason", "no metric reported")
            raise TrialFailed(f"trial {trial.number}: the trainer reported no {self.metric}")
        return value


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _tail(path: Path, lines: int = 6) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def require_trials(outcome: TuningOutcome) -> BestTrial:
    """The study's best trial, or a DataError saying why there is none."""
    if outcome.best is None:
        raise DataError(
            f"study {outcome.study}: no trial completed ({outcome.counts}); each trial's "
            f"trainer.log is in its folder under the run's tuning/trials/"
        )
    return outcome.best


def optuna_distributions(spec: Sequence[ParamSpec] = SPEC) -> dict[str, Any]:
    """The spec as Optuna distributions (the local tuner's half of the one spec)."""
    from optuna.distributions import FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for p in spec:
        if p.kind == "int":
            out[p.name] = IntDistribution(int(p.low), int(p.high), log=p.log)
        else:
            out[p.name] = FloatDistribution(p.low, p.high, log=p.log)
    return out
