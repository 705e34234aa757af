"""One port for the Airflow UI/API and the URLs the task runners call (scripts/airflow_env.sh).

A port moved alone leaves every task "up for retry" (the runners still call localhost:8080), so
the venv's activate script, the `airflow` wrapper it defines and `make airflow` / `make serve` are
checked here in plain shells, without starting Airflow (tests/dags/test_real_airflow.py does).
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV_SCRIPT = REPO / "scripts" / "airflow_env.sh"
KEYS = ("AIRFLOW__API__PORT", "AIRFLOW__API__BASE_URL", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL")
# Files whose digest scripts/setup_env.sh compares with the venv's stamp before reinstalling.
REQUIREMENTS = (
    "requirements.txt",
    "requirements-dev.txt",
    "constraints.txt",
    "trainer/requirements.txt",
    "serving/requirements.txt",
)


def _clean_env(**extra: str) -> dict[str, str]:
    # Nothing Airflow- or port-related leaks in from the environment running the tests.
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **extra}


def _shell(script: str, shell: str = "bash", **env: str) -> dict[str, str]:
    """Run `script`, then report the three values as the shell sees them."""
    probe = "".join(f'; printf "%s=%s\\n" {k} "${{{k}:-}}"' for k in KEYS)
    out = subprocess.run(
        [shell, "-c", script + probe],
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _derived(port: int | str) -> dict[str, str]:
    return {
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
    }


SOURCE = f'. "{ENV_SCRIPT}" && sf_airflow_env'


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_default_port_is_airflows_own(shell):
    assert _shell(SOURCE, shell) == _derived(8080)


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_one_setting_moves_all_three(shell):
    assert _shell(SOURCE, shell, SF_AIRFLOW_PORT="9123") == _derived(9123)


def test_airflows_own_port_alone_moves_the_urls_too():
    assert _shell(SOURCE, AIRFLOW__API__PORT="9200") == _derived(9200)


def test_airflows_own_port_wins_over_ours_with_a_warning():
    proc = subprocess.run(
        ["bash", "-c", SOURCE + '; echo "$AIRFLOW__API__BASE_URL"'],
        env=_clean_env(AIRFLOW__API__PORT="9201", SF_AIRFLOW_PORT="9202"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == "http://localhost:9201"
    assert "AIRFLOW__API__PORT=9201 wins over SF_AIRFLOW_PORT=9202" in proc.stderr


def test_explicit_urls_are_kept():
    # Behind a proxy the base URL is not localhost; the execution URL follows Airflow's own
    # default rule ({base_url}/execution/).
    got = _shell(SOURCE, SF_AIRFLOW_PORT="9300", AIRFLOW__API__BASE_URL="https://af.example/x/")
    assert got == {
        "AIRFLOW__API__PORT": "9300",
        "AIRFLOW__API__BASE_URL": "https://af.example/x/",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "https://af.example/x/execution/",
    }
    pinned = "http://10.0.0.5:9301/execution/"
    got = _shell(SOURCE, SF_AIRFLOW_PORT="9301", AIRFLOW__CORE__EXECUTION_API_SERVER_URL=pinned)
    assert got == _derived(9301) | {"AIRFLOW__CORE__EXECUTION_API_SERVER_URL": pinned}


def test_a_port_changed_after_activation_is_derived_again():
    # Our own earlier values are recognised and replaced; the user's port is not.
    again = SOURCE + "; export SF_AIRFLOW_PORT=9401; sf_airflow_env"
    assert _shell(again) == _derived(9401)
    again = SOURCE + "; export AIRFLOW__API__PORT=9402; sf_airflow_env"
    assert _shell(again) == _derived(9402)
    # A child shell (`make airflow` from an activated shell) inherits the markers too.
    child = SOURCE + f"; export SF_AIRFLOW_PORT=9403; exec bash -c '{SOURCE}"
    probe = "".join(f'; printf "%s=%s\\n" {k} "${{{k}:-}}"' for k in KEYS)
    out = subprocess.run(
        ["bash", "-c", child + probe + "'"], env=_clean_env(), capture_output=True, text=True
    ).stdout
    assert dict(line.split("=", 1) for line in out.splitlines()) == _derived(9403)


def test_the_airflow_wrapper_applies_a_port_set_after_activation(tmp_path):
    # The reported failure: activate, then `AIRFLOW__API__PORT=9500 airflow standalone`. A fake
    # `airflow` on PATH prints what the real one would be started with.
    fake = tmp_path / "airflow"
    fake.write_text(
        "#!/bin/sh\n" + "".join(f'printf "%s=%s\\n" {k} "${k}"\n' for k in KEYS) + 'echo "$@"\n'
    )
    fake.chmod(0o755)
    script = SOURCE + "; AIRFLOW__API__PORT=9500 airflow standalone"
    out = subprocess.run(
        ["bash", "-c", script],
        env=_clean_env() | {"PATH": f"{tmp_path}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[-1] == "standalone"
    assert dict(line.split("=", 1) for line in out[:-1]) == _derived(9500)
    # ... and the caller's shell keeps its own values (the wrapper runs in a subshell).
    after = _shell(script.replace("airflow standalone", "airflow x >/dev/null"))
    assert after == _derived(8080)


def test_a_port_that_is_not_a_number_is_refused():
    proc = subprocess.run(
        ["bash", "-c", SOURCE],
        env=_clean_env(SF_AIRFLOW_PORT="80 80"),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "the Airflow port must be a number, got '80 80'" in proc.stderr


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A venv-shaped folder that scripts/setup_env.sh treats as up to date, so it only rewrites
    the activate script's settings block (no install, no venv creation)."""
    venv = tmp_path_factory.mktemp("venv")
    (venv / "bin").mkdir()
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "bin" / "airflow").symlink_to(Path(sys.executable).parent / "airflow")
    (venv / "bin" / "activate").write_text(
        f'export VIRTUAL_ENV="{venv}"\nexport PATH="$VIRTUAL_ENV/bin:$PATH"\n'
    )
    existing = [REPO / f for f in REQUIREMENTS if (REPO / f).exists()]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in existing)).hexdigest()
    (venv / ".requirements.sha256").write_text(digest + "\n")
    for _ in range(2):  # re-running replaces the block instead of adding a second one
        subprocess.run(
            ["bash", str(REPO / "scripts" / "setup_env.sh")],
            env=_clean_env(VENV=str(venv), PYTHON=sys.executable),
            check=True,
            capture_output=True,
            timeout=120,
        )
    return venv


def test_setup_env_writes_one_settings_block_that_derives_the_urls(venv):
    activate = (venv / "bin" / "activate").read_text()
    assert activate.count("# >>> sales-forecast local settings >>>") == 1
    source = f'. "{venv}/bin/activate"'
    assert _shell(source) == _derived(8080)
    assert _shell(source, SF_AIRFLOW_PORT="9600") == _derived(9600)
    assert _shell(source, AIRFLOW__API__PORT="9601") == _derived(9601)
    assert _shell(source + "; export SF_AIRFLOW_PORT=9602; " + source) == _derived(9602)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize(
    ("env", "port"),
    [({}, "8090"), ({"SF_SERVING_PORT": "9801"}, "9801"), ({"AIP_HTTP_PORT": "9802"}, "9802")],
)
def test_make_serve_has_its_own_port(env, port):
    # Dry run: the command `make serve` would start, beside an Airflow UI on 8080.
    out = subprocess.run(
        ["make", "-n", "-s", "serve"],
        cwd=REPO,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"AIP_HTTP_PORT='{port}' python -m serving" in out
