"""The deployment files that cannot run here (no Docker, no gcloud), checked by reading them.

docker-compose.airflow.yml is parsed as YAML and its services, mounts and image tags checked;
the Composer deploy script runs in --dry-run mode and its gcloud commands are checked; the
image Dockerfiles are read for what they copy and how they install. Every deployable must carry
sf_contract, the package the Airflow side, the trainer and the server share.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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
    # sf_contract first: sales_forecast imports it, and Composer puts plugins/ on sys.path.
    for command, package in zip(commands[4:6], ["sf_contract", "sales_forecast"], strict=True):
        assert re.fullmatch(
            rf"gcloud composer environments storage plugins import --environment env-1 {where} "
            rf"--source \S+/{package}",
            command,
        )
    assert commands[6:] == [
        f"gcloud composer environments storage dags import --environment env-1 {where} "
        f"--source dags/{dag.name}"
        for dag in sorted((REPO / "dags").glob("*.py"))
    ]


def test_deploy_script_stages_the_packages_without_caches(tmp_path):
    # Run the staging part for real with a fake gcloud that lists what it was given.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    listing = tmp_path / "listing.txt"
    fake = bin_dir / "gcloud"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'prev=""; for a in "$@"; do\n'
        '  if [ "$prev" = --source ] && [ -d "$a" ]; then\n'
        f'    (cd "$a" && find . -type f | sed "s|^|$(basename "$a"):|") >> {listing}\n'
        "  fi\n"
        '  prev="$a"\n'
        "done\n"
    )
    fake.chmod(0o755)
    subprocess.run(
        ["bash", str(REPO / "scripts" / "deploy_composer.sh"), "--environment", "env-1",
         "--location", "europe-west4", "--skip-requirements"],
        capture_output=True, text=True, check=True, cwd=str(REPO),
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    staged = listing.read_text().splitlines()
    expected = {
        f"sf_contract:./{p.relative_to(REPO / 'sf_contract')}"
        for p in (REPO / "sf_contract").rglob("*.py")
    }
    assert expected <= set(staged)
    assert "sales_forecast:./contract.py" in staged
    assert not [line for line in staged if "__pycache__" in line or line.endswith(".pyc")]


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
