"""The deployment files that cannot run here (no Docker, no gcloud), checked by reading them
and by running the scripts against stand-ins for gcloud and docker.

docker-compose.airflow.yml is parsed as YAML and its services, mounts and image tags checked;
the Composer deploy script runs in --dry-run mode (its gcloud commands are checked) and for real
against a fake gcloud that can fail any step (it must stop on every failure but "no change",
check the triggerer and set the input URI); requirements-composer.txt is checked against what
the Airflow side imports; the image Dockerfiles are read for what they copy and how they
install, .dockerignore is matched against their COPY sources, and the build script runs
against a fake docker (linux/amd64 images only). Every deployable must carry sf_contract, the
package the Airflow side, the trainer and the server share.

What this cannot show: that gcloud, Composer and Docker accept these commands, nor IAM; the
first deploy does, and scripts/gcp_smoke.sh checks the result on a project.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.airflow.yml"
DOCKERFILE = REPO / "docker" / "airflow.Dockerfile"
TRAINER_DOCKERFILE = REPO / "trainer" / "Dockerfile"
SERVING_DOCKERFILE = REPO / "serving" / "Dockerfile"
AIRFLOW_SERVICES = {
    "airflow-apiserver": ["api-server"],
    "airflow-scheduler": ["scheduler"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer"],
    "airflow-init": ["db", "migrate"],
}


def pinned(package: str) -> str:
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line.startswith(f"{package}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{package} is not pinned in requirements.txt")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_the_airflow_3_components_and_postgres(compose):
    services = compose["services"]
    assert set(services) == {"postgres", *AIRFLOW_SERVICES}
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command, name
    assert services["airflow-apiserver"]["ports"] == ["8080:8080"]
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    # Task processes talk to the api-server's execution API (Airflow 3).
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:")
    for name in set(AIRFLOW_SERVICES) - {"airflow-init"}:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["airflow-init"]["condition"] == "service_completed_successfully"


def test_compose_mounts_dags_and_plugins_from_this_repository(compose):
    for name in AIRFLOW_SERVICES:
        mounts = {}
        for volume in compose["services"][name]["volumes"]:
            source, target, *mode = volume.split(":")
            mounts[target] = (source, mode)
        assert mounts["/opt/airflow/dags"] == ("./dags", ["ro"]), name
        assert mounts["/opt/airflow/plugins"] == ("./plugins", ["ro"]), name
        # Imported by sales_forecast and by the trainer subprocess (which runs from
        # /opt/airflow, the image's PYTHONPATH).
        assert mounts["/opt/airflow/sf_contract"] == ("./sf_contract", ["ro"]), name
        assert mounts["/opt/airflow/trainer"] == ("./trainer", ["ro"]), name
        for source, _ in mounts.values():
            if source.startswith("./"):
                assert (REPO / source).is_dir(), f"{name} mounts missing {source}"


def test_compose_images_are_pinned_to_the_composer_airflow_version(compose):
    airflow = pinned("apache-airflow")
    images = {name: svc["image"] for name, svc in compose["services"].items()}
    for name, image in images.items():
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: {image} has no fixed tag"
    for name in AIRFLOW_SERVICES:
        svc = compose["services"][name]
        assert svc["image"] == f"sales-forecast-airflow:{airflow}"
        assert svc["build"]["dockerfile"] == "docker/airflow.Dockerfile"
        assert svc["build"]["context"] == "."
        assert svc["build"]["args"]["AIRFLOW_VERSION"] == airflow


def test_airflow_image_extends_the_official_one_with_the_requirements():
    text = DOCKERFILE.read_text()
    airflow = pinned("apache-airflow")
    assert f"ARG AIRFLOW_VERSION={airflow}" in text
    assert re.search(r"^FROM apache/airflow:\$\{AIRFLOW_VERSION\}-python", text, re.M)
    assert "COPY --chown=airflow:root requirements.txt" in text
    assert "-r /opt/sales-forecast/requirements.txt" in text
    # sales_forecast from the plugins mount; sf_contract (mounted at /opt/airflow/sf_contract)
    # and the trainer from /opt/airflow.
    (pythonpath,) = re.findall(r"PYTHONPATH=(\S+)", text)
    assert pythonpath.split(":") == ["/opt/airflow/plugins", "/opt/airflow"]


def test_sf_contract_imports_from_the_compose_paths(tmp_path):
    """The compose layout, rebuilt from its mounts, imports sf_contract and sales_forecast."""
    root = tmp_path / "opt" / "airflow"
    root.mkdir(parents=True)
    mounts = {}
    for volume in yaml.safe_load(COMPOSE.read_text())["services"]["airflow-scheduler"]["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("./") and target.startswith("/opt/airflow/"):
            mounts[target.removeprefix("/opt/airflow/")] = REPO / source
    for name in ("plugins", "sf_contract"):
        (root / name).symlink_to(mounts[name], target_is_directory=True)
    (pythonpath,) = re.findall(r"PYTHONPATH=(\S+)", DOCKERFILE.read_text())
    path = pythonpath.replace("/opt/airflow", str(root))
    probe = "import sf_contract.schema, sales_forecast.contract; print(sf_contract.__file__)"
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        cwd=str(tmp_path),
    )
    assert proc.stdout.strip().startswith(str(root / "sf_contract"))


@pytest.mark.parametrize("dockerfile", [TRAINER_DOCKERFILE, SERVING_DOCKERFILE])
def test_images_carry_sf_contract_and_install_with_the_constraints(dockerfile):
    lines = dockerfile.read_text().splitlines()
    assert "COPY sf_contract/ /app/sf_contract/" in lines
    assert "WORKDIR /app" in lines
    assert "COPY constraints.txt /app/constraints.txt" in lines
    (install,) = [line for line in lines if line.startswith("RUN pip install")]
    assert install.endswith("-c /app/constraints.txt")
    # Code after the dependencies, so a code change does not reinstall them.
    copy_code = lines.index("COPY sf_contract/ /app/sf_contract/")
    assert lines.index(install) < copy_code


def test_trainer_image_finds_sf_contract_wherever_it_starts():
    text = TRAINER_DOCKERFILE.read_text()
    assert re.search(r"^ENV PYTHONPATH=/app$", text, re.M)
    assert 'ENTRYPOINT ["python", "-m", "trainer"]' in text


def test_trainer_pins_match_the_constraints():
    # The trainer pickles the model the serving image unpickles: both resolve through
    # constraints.txt, which must agree with the trainer's own pins.
    def pins(path):
        out = {}
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                out[name.strip().lower()] = version.strip()
        return out

    constraints = pins(REPO / "constraints.txt")
    for name, version in pins(REPO / "trainer" / "requirements.txt").items():
        assert constraints.get(name) == version, name


DEPLOY = REPO / "scripts" / "deploy_composer.sh"
WHERE = "--location europe-west4 --project acme"
INPUT_URI = "gs://acme-drops/{{ ds }}/sales.csv"
NO_CHANGE = (
    "ERROR: (gcloud.composer.environments.update) INVALID_ARGUMENT: No change in configuration. "
    "Must specify a change to configuration.software_configuration.{}"
)

# A stand-in for gcloud: logs every call (arguments tab-separated, one call a line), lists the
# files of each --source folder, answers `describe` with $FAKE_TRIGGERERS, and fails the calls
# whose arguments contain $FAKE_FAIL_<n>_ON with message $FAKE_FAIL_<n>_MSG.
FAKE_GCLOUD = r"""#!/usr/bin/env bash
printf '%s\t' "$@" >> "$FAKE_LOG"; echo >> "$FAKE_LOG"
prev=""
for a in "$@"; do
  if [ "$prev" = --source ] && [ -d "$a" ]; then
    (cd "$a" && find . -type f | sed "s|^|$(basename "$a"):|") >> "$FAKE_LISTING"
  fi
  prev="$a"
done
case " $* " in *" describe "*) echo "${FAKE_TRIGGERERS-1}"; exit 0 ;; esac
for n in 1 2 3; do
  on="FAKE_FAIL_${n}_ON" msg="FAKE_FAIL_${n}_MSG"
  if [ -n "${!on:-}" ] && [[ " $* " == *"${!on}"* ]]; then
    echo "Waiting for the operation to finish..." >&2
    echo "${!msg}" >&2
    exit 1
  fi
done
"""


def deploy(*args: str, tmp_path: Path, **fake: str) -> tuple[subprocess.CompletedProcess, list]:
    """Runs the deploy script for real against the fake gcloud; returns its calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "gcloud").write_text(FAKE_GCLOUD)
    (bin_dir / "gcloud").chmod(0o755)
    log = tmp_path / "gcloud.log"
    log.write_text("")
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "FAKE_LOG": str(log),
        "FAKE_LISTING": str(tmp_path / "listing.txt"),
        **fake,
    }
    proc = subprocess.run(
        ["bash", str(DEPLOY), "--environment", "env-1", "--location", "europe-west4",
         "--project", "acme", *args],
        capture_output=True, text=True, cwd=str(REPO), env=env,
    )  # fmt: skip
    calls = [line.split("\t")[:-1] for line in log.read_text().splitlines()]
    return proc, calls


def storage_calls(calls: list) -> list:
    return [c for c in calls if c[:3] == ["composer", "environments", "storage"]]


def test_deploy_script_dry_run_prints_every_command(tmp_path):
    variables = tmp_path / "vars.json"
    variables.write_text('{"sf_gcp_project": "p"}')
    proc = subprocess.run(
        ["bash", str(DEPLOY), "--environment", "env-1", "--location", "europe-west4",
         "--project", "acme", "--variables", str(variables), "--input-uri", INPUT_URI,
         "--dry-run"],
        capture_output=True, text=True, check=True, cwd=str(REPO),
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},  # no gcloud: nothing runs
    )  # fmt: skip
    out = proc.stdout
    pypi = [line.removeprefix("# pypi: ") for line in out.splitlines() if line.startswith("# pypi")]
    assert pypi == composer_requirements()
    commands = [line for line in out.splitlines() if line.startswith("gcloud ")]
    assert commands[0] == (
        f"gcloud composer environments describe env-1 {WHERE} "
        r"--format value\(config.workloadsConfig.triggerer.count\)"
    )
    assert commands[1] == f"gcloud composer environments update env-1 {WHERE} --triggerer-count 1"
    assert commands[2].startswith(
        f"gcloud composer environments update env-1 {WHERE} --update-pypi-packages-from-file "
    )
    assert commands[3] == (
        f"gcloud composer environments update env-1 {WHERE} --update-env-variables SF_PLATFORM=gcp"
    )
    assert commands[4].startswith("gcloud composer environments storage data import ")
    assert commands[5] == (
        f"gcloud composer environments run env-1 {WHERE} variables import -- "
        "/home/airflow/gcs/data/sf_variables.json"
    )
    assert commands[6] == (
        f"gcloud composer environments run env-1 {WHERE} variables set -- sf_gcp_input_uri "
        r"gs://acme-drops/\{\{\ ds\ \}\}/sales.csv"
    )
    # The ignore file before any package; sf_contract before sales_forecast, which imports it.
    assert commands[7] == (
        f"gcloud composer environments storage plugins import --environment env-1 {WHERE} "
        "--source plugins/.airflowignore"
    )
    for command, package in zip(commands[8:10], ["sf_contract", "sales_forecast"], strict=True):
        assert re.fullmatch(
            rf"gcloud composer environments storage plugins import --environment env-1 {WHERE} "
            rf"--source \S+/{package}",
            command,
        )
    assert commands[10] == (
        f"gcloud composer environments storage plugins import --environment env-1 {WHERE} "
        "--source plugins/forecasts_view.py"
    )
    assert commands[11:] == [
        f"gcloud composer environments storage dags import --environment env-1 {WHERE} "
        f"--source dags/{dag.name}"
        for dag in sorted((REPO / "dags").glob("*.py"))
    ]


def test_deploy_script_stages_the_packages_and_the_ignore_file_without_caches(tmp_path):
    proc, calls = deploy("--input-uri", INPUT_URI, "--skip-requirements", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    staged = (tmp_path / "listing.txt").read_text().splitlines()
    expected = {
        f"sf_contract:./{p.relative_to(REPO / 'sf_contract')}"
        for p in (REPO / "sf_contract").rglob("*.py")
    }
    assert expected <= set(staged)
    assert "sales_forecast:./contract.py" in staged
    assert not [line for line in staged if "__pycache__" in line or line.endswith(".pyc")]
    sources = [c[c.index("--source") + 1] for c in storage_calls(calls) if "plugins" in c]
    assert sources[0] == "plugins/.airflowignore"
    assert [Path(s).name for s in sources[1:]] == [
        "sf_contract",
        "sales_forecast",
        "forecasts_view.py",
    ]


def test_deploy_script_requires_an_input_uri(tmp_path):
    # Without one, the daily schedule would fail at its first task on every run.
    proc, calls = deploy(tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "--input-uri" in proc.stderr and "sf_gcp_input_uri" in proc.stderr
    assert calls == []  # refused before touching the environment
    empty = tmp_path / "empty.json"
    empty.write_text('{"sf_gcp_project": "p", "sf_gcp_input_uri": ""}')
    proc, calls = deploy("--variables", str(empty), tmp_path=tmp_path)
    assert proc.returncode == 2 and calls == []
    proc, calls = deploy("--input-uri", "/home/airflow/gcs/data/x.csv", tmp_path=tmp_path)
    assert proc.returncode == 2 and "gs://" in proc.stderr and calls == []


def test_deploy_script_sets_the_input_uri_variable_after_the_file(tmp_path):
    variables = tmp_path / "vars.json"
    variables.write_text('{"sf_gcp_project": "p",\n "sf_gcp_input_uri": "gs://old/x.csv"}')
    proc, calls = deploy("--variables", str(variables), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr  # the file's own value is enough
    assert not [c for c in calls if "set" in c]
    proc, calls = deploy("--variables", str(variables), "--input-uri", INPUT_URI, tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = [c for c in calls if c[:3] == ["composer", "environments", "run"]]
    assert runs[0][-3:] == ["import", "--", "/home/airflow/gcs/data/sf_variables.json"]
    # One argument, spaces and braces intact: the flag wins over the file.
    assert runs[1][-4:] == ["set", "--", "sf_gcp_input_uri", INPUT_URI]


def test_deploy_script_stops_when_the_pypi_update_fails(tmp_path):
    proc, calls = deploy(
        "--input-uri", INPUT_URI, tmp_path=tmp_path,
        FAKE_FAIL_1_ON="--update-pypi-packages-from-file",
        FAKE_FAIL_1_MSG="ERROR: (gcloud.composer.environments.update) Failed to install pypi "
        "packages: pip install exited with 1",
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Failed to install pypi packages" in proc.stderr  # gcloud's message is shown
    assert "nothing more was deployed" in proc.stderr
    assert calls[-1][:3] == ["composer", "environments", "update"]
    assert not [c for c in calls if "SF_PLATFORM=gcp" in c]
    assert storage_calls(calls) == []  # no code without its packages


def test_deploy_script_stops_on_any_other_update_failure(tmp_path):
    proc, calls = deploy(
        "--input-uri", INPUT_URI, "--skip-requirements", tmp_path=tmp_path,
        FAKE_FAIL_1_ON="--update-env-variables",
        FAKE_FAIL_1_MSG="ERROR: (gcloud.composer.environments.update) FAILED_PRECONDITION: "
        "Cannot update environment in state UPDATING.",
    )  # fmt: skip
    assert proc.returncode == 1
    assert storage_calls(calls) == []


def test_deploy_script_goes_on_when_nothing_changed(tmp_path):
    proc, calls = deploy(
        "--input-uri", INPUT_URI, tmp_path=tmp_path,
        FAKE_FAIL_1_ON="--update-pypi-packages-from-file",
        FAKE_FAIL_1_MSG=NO_CHANGE.format("pypi_dependencies"),
        FAKE_FAIL_2_ON="--update-env-variables",
        FAKE_FAIL_2_MSG=NO_CHANGE.format("env_variables"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [Path(c[-1]).name for c in storage_calls(calls)][:4] == [
        ".airflowignore", "sf_contract", "sales_forecast", "forecasts_view.py"
    ]  # fmt: skip


def test_deploy_script_adds_a_triggerer_only_when_there_is_none(tmp_path):
    def triggerer_updates(calls):
        return [c for c in calls if "--triggerer-count" in c]

    for reported in ("", "0"):
        proc, calls = deploy(
            "--input-uri", INPUT_URI, "--skip-requirements", tmp_path=tmp_path,
            FAKE_TRIGGERERS=reported,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert calls[0][:4] == ["composer", "environments", "describe", "env-1"]
        (update,) = triggerer_updates(calls)
        assert update[update.index("--triggerer-count") + 1] == "1"
    # Highly resilient environments need 0 or at least 2.
    proc, calls = deploy(
        "--input-uri", INPUT_URI, "--skip-requirements", "--triggerer-count", "2",
        tmp_path=tmp_path, FAKE_TRIGGERERS="0",
    )  # fmt: skip
    (update,) = triggerer_updates(calls)
    assert update[update.index("--triggerer-count") + 1] == "2"
    proc, calls = deploy(
        "--input-uri", INPUT_URI, "--skip-requirements", tmp_path=tmp_path, FAKE_TRIGGERERS="2"
    )
    assert proc.returncode == 0, proc.stderr
    assert triggerer_updates(calls) == []
    # A triggerer that cannot be added stops the deploy: deferred tasks would hang.
    proc, calls = deploy(
        "--input-uri", INPUT_URI, "--skip-requirements", tmp_path=tmp_path,
        FAKE_TRIGGERERS="0", FAKE_FAIL_1_ON="--triggerer-count",
        FAKE_FAIL_1_MSG="ERROR: (gcloud.composer.environments.update) INVALID_ARGUMENT: "
        "highly resilient environments need 0 or at least 2 triggerers",
    )  # fmt: skip
    assert proc.returncode == 1
    assert storage_calls(calls) == []


def composer_requirements() -> list[str]:
    lines = (REPO / "requirements-composer.txt").read_text().splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def test_composer_requirements_are_lower_bounds_of_what_the_image_lacks():
    local = {Requirement(line).name.lower(): Requirement(line) for line in
             composer_requirements_of(REPO / "requirements.txt")}  # fmt: skip
    names = set()
    for line in composer_requirements():
        req = Requirement(line)
        name = req.name.lower()
        names.add(name)
        assert not [s for s in req.specifier if s.operator in {"==", "===", "~="}], line
        assert [s for s in req.specifier if s.operator == ">="], f"{line}: no lower bound"
        # The tests run inside the range Composer gets.
        (local_pin,) = local[name].specifier
        assert req.specifier.contains(local_pin.version), line
    # Composer refuses apache-airflow itself; the rest it preinstalls or the gcp path never uses.
    assert not names & {"apache-airflow", "duckdb", "fsspec", "gcsfs", "pyyaml"}


def composer_requirements_of(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            out.append(line)
    return out


def test_every_import_of_the_airflow_side_reaches_composer():
    # Each third-party distribution the Airflow side imports on Composer is either installed by
    # requirements-composer.txt or required by Airflow or the Google provider, which every
    # Composer image carries. local.py modules (the platform's, the view's) and platforms/local*.py
    # are the local platform (DuckDB, fsspec, Optuna).
    sources = [
        p for p in [*(REPO / "plugins").rglob("*.py"), *(REPO / "dags").glob("*.py")]
        if p.name != "local.py"
        and not (p.parent.name == "platforms" and p.name.startswith("local"))
        and "__pycache__" not in p.parts
    ]  # fmt: skip
    modules = set()
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    modules -= set(sys.stdlib_module_names) | {"sales_forecast", "sf_contract"}
    by_module = metadata.packages_distributions()
    listed = {Requirement(line).name.lower() for line in composer_requirements()}
    preinstalled = {"apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk"}
    for dist in ("apache-airflow-core", "apache-airflow-task-sdk",
                 "apache-airflow-providers-google"):  # fmt: skip
        for spec in metadata.requires(dist) or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                preinstalled.add(req.name.lower().replace("_", "-"))
    for module in sorted(modules):
        dists = {d.lower().replace("_", "-") for d in by_module.get(module, [])}
        assert dists, f"{module}: no installed distribution provides it"
        assert dists & (listed | preinstalled), (
            f"{module} ({', '.join(sorted(dists))}) is neither in requirements-composer.txt "
            "nor preinstalled with Airflow"
        )


def test_build_script_refuses_to_build_without_sf_contract(tmp_path):
    # A checkout without sf_contract/: the script stops before calling docker.
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "build_images.sh"
    script.write_text((REPO / "scripts" / "build_images.sh").read_text())
    for image in ("trainer", "serving"):
        (tmp_path / image).mkdir()
        (tmp_path / image / "Dockerfile").write_text("FROM scratch\n")
    proc = subprocess.run(
        ["bash", str(script), "--no-push"],
        capture_output=True, text=True, cwd=str(tmp_path),
        env={"PATH": "/usr/bin:/bin", "REGISTRY": "registry.invalid/p/r", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 1
    assert "missing sf_contract/" in proc.stderr


DOCKERFILES = [TRAINER_DOCKERFILE, SERVING_DOCKERFILE, DOCKERFILE]


def _dockerignore_rules() -> list[tuple[bool, re.Pattern]]:
    """.dockerignore as Docker reads it: Go filepath.Match globs plus `**`, `!` re-includes,
    the last matching rule wins, and a rule matching a folder covers everything in it."""
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((include, re.compile(regex)))
    return rules


def sent_to_builder(relative: str) -> bool:
    parts = relative.split("/")
    excluded = False
    for include, regex in _dockerignore_rules():
        # The path itself or any folder above it.
        if any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not include
    return not excluded


def copy_sources(dockerfile: Path) -> list[str]:
    sources = []
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            args = [a for a in line.split()[1:] if not a.startswith("--")]
            sources += args[:-1]
    return sources


def test_the_dockerignore_matcher_reads_docker_semantics():
    # The allowlist: everything out, the copied paths back in, caches out again.
    assert not sent_to_builder("README.md")
    assert sent_to_builder("trainer/cli.py")
    assert not sent_to_builder("trainer/__pycache__/cli.cpython-311.pyc")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerignore_keeps_every_copy_source(dockerfile):
    sources = copy_sources(dockerfile)
    assert sources, dockerfile
    for source in sources:
        path = REPO / source
        assert path.exists(), source
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        kept = [f for f in files if "__pycache__" not in f.parts]
        assert kept, source
        for file in kept:
            assert sent_to_builder(file.relative_to(REPO).as_posix()), file


def test_dockerignore_drops_the_local_state():
    for path in (".venv/bin/python", ".venv-emulators/bin/python", ".venv-serving-image/x",
                 ".local/runs/x.csv", ".airflow/airflow.db", ".airflow-test/airflow.cfg",
                 ".git/HEAD", "tests/conftest.py", "data/demo/retail_sales.csv",
                 "plugins/sales_forecast/config.py", "sf_contract/__pycache__/schema.pyc",
                 "benchmarks/x.py", ".hypothesis/examples/x"):  # fmt: skip
        assert not sent_to_builder(path), path


FAKE_DOCKER = r"""#!/usr/bin/env bash
printf '%s\t' "$@" >> "$FAKE_LOG"; echo >> "$FAKE_LOG"
if [ "$1 $2" = "image inspect" ]; then echo "${FAKE_BUILT_FOR:-linux/amd64}"; fi
"""


def build(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, list]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    log = tmp_path / "docker.log"
    log.write_text("")
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "build_images.sh"), "--tag", "t1", *args],
        capture_output=True, text=True, cwd=str(tmp_path),
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "FAKE_LOG": str(log),
             "REGISTRY": "registry.invalid/p/r", **env},
    )  # fmt: skip
    return proc, [line.split("\t")[:-1] for line in log.read_text().splitlines()]


def test_build_script_builds_and_pushes_linux_amd64_images(tmp_path):
    proc, calls = build(tmp_path)
    assert proc.returncode == 0, proc.stderr
    builds = [c for c in calls if c[0] == "build"]
    assert [c[c.index("--file") + 1] for c in builds] == [
        "trainer/Dockerfile",
        "serving/Dockerfile",
    ]
    for call in builds:
        assert call[call.index("--platform") + 1] == "linux/amd64"
        assert call[-1] == "."  # the repository root, filtered by .dockerignore
    assert [c for c in calls if c[0] == "push"] == [
        ["push", "registry.invalid/p/r/trainer:t1"], ["push", "registry.invalid/p/r/serving:t1"]
    ]  # fmt: skip
    assert "sf_gcp_trainer_image=registry.invalid/p/r/trainer:t1" in proc.stdout


def test_build_script_refuses_to_push_an_image_of_another_architecture(tmp_path):
    # A builder that ignored --platform (legacy, no BuildKit) on an arm64 host.
    proc, calls = build(tmp_path, FAKE_BUILT_FOR="linux/arm64")
    assert proc.returncode == 1
    assert "linux/arm64, not linux/amd64" in proc.stderr
    assert not [c for c in calls if c[0] == "push"]


def test_shell_scripts_parse():
    for script in ("deploy_composer.sh", "build_images.sh", "setup_emulators.sh"):
        subprocess.run(["bash", "-n", str(REPO / "scripts" / script)], check=True)


def test_no_registry_host_is_named():
    # Images come from configuration (<your-registry>/<project>/<repo>/...), never from code.
    files = [
        COMPOSE, DOCKERFILE, REPO / "scripts" / "deploy_composer.sh",
        REPO / "scripts" / "build_images.sh", REPO / "docs" / "gcp.md",
        *(REPO / "plugins" / "sales_forecast" / "platforms").glob("gcp*.py"),
        REPO / "plugins" / "sales_forecast" / "config.py",
    ]  # fmt: skip
    pattern = re.compile(r"[a-z0-9-]+\.pkg\.dev|gcr\.io|docker\.io|quay\.io|ghcr\.io")
    for path in files:
        assert not pattern.search(path.read_text()), path
