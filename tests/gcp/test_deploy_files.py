"""The deployment files that cannot run here (no Docker, no gcloud), checked by reading them.

docker-compose.airflow.yml is parsed as YAML and its services, mounts and image tags checked;
the Composer deploy script runs in --dry-run mode and its gcloud commands are checked.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.airflow.yml"
DOCKERFILE = REPO / "docker" / "airflow.Dockerfile"
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


def test_deploy_script_syncs_code_and_installs_requirements(tmp_path):
    variables = tmp_path / "vars.json"
    variables.write_text('{"sf_gcp_project": "p"}')
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "deploy_composer.sh"), "--environment", "env-1",
         "--location", "europe-west4", "--project", "acme", "--variables", str(variables),
         "--dry-run"],
        capture_output=True, text=True, check=True, cwd=str(REPO),
    )  # fmt: skip
    out = proc.stdout
    pypi = [line.removeprefix("# pypi: ") for line in out.splitlines() if line.startswith("#")]
    assert f"apache-airflow-providers-google=={pinned('apache-airflow-providers-google')}" in pypi
    assert not any(p.startswith("apache-airflow==") for p in pypi)  # Composer provides Airflow
    commands = [line for line in out.splitlines() if line.startswith("gcloud ")]
    where = "--location europe-west4 --project acme"
    assert commands[0].startswith(
        f"gcloud composer environments update env-1 {where} --update-pypi-packages-from-file "
    )
    assert commands[1] == (
        f"gcloud composer environments update env-1 {where} --update-env-variables SF_PLATFORM=gcp"
    )
    assert commands[3] == (
        f"gcloud composer environments run env-1 {where} variables import -- "
        "/home/airflow/gcs/data/sf_variables.json"
    )
    assert re.fullmatch(
        rf"gcloud composer environments storage plugins import --environment env-1 {where} "
        r"--source \S+/sales_forecast",
        commands[4],
    )
    assert commands[5:] == [
        f"gcloud composer environments storage dags import --environment env-1 {where} "
        f"--source dags/{dag.name}"
        for dag in sorted((REPO / "dags").glob("*.py"))
    ]


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
