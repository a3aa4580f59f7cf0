"""Packaging: the wheel carries everything a user needs, and works outside the checkout."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def declared_packages() -> set[str]:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    return {line.strip() for line in config["options"]["packages"].splitlines() if line.strip()}


def test_setup_cfg_lists_every_package_in_the_source_tree():
    found = {
        ".".join(init.parent.relative_to(REPO).parts) for init in (REPO / "fhir_dnacpr").rglob("__init__.py")
    }
    assert found | {"fhir_dnacpr.profiles", "fhir_dnacpr.examples"} == declared_packages()


@pytest.mark.slow
def test_fresh_venv_non_editable_install_runs_the_examples_outside_the_checkout(tmp_path):
    """pip install . into a new venv, then convert + validate an example from another folder."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
        check=True,
        env=env,
    )
    wheel = next(wheels.glob("fhir_dnacpr-*.whl"))
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, env=env)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [
            str(python),
            "-c",
            "from fhir_dnacpr.resources import examples_dir, profiles_dir;"
            "print(examples_dir()); print(profiles_dir())",
        ],
        cwd=elsewhere,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    examples, profiles = Path(where[0]), Path(where[1])
    assert REPO not in examples.parents and REPO not in profiles.parents, "must use the installed copy"
    assert (profiles / "StructureDefinition-DnacprDecision.json").is_file()

    cli = env_dir / "bin" / "fhir-dnacpr"
    converted = subprocess.run(
        [
            str(cli),
            "convert",
            str(examples / "epaccs" / "register.csv"),
            "--mapping",
            str(examples / "epaccs" / "mapping.yaml"),
            "--out",
            "out",
            "--quiet",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert converted.returncode == 1, converted.stderr  # the example holds deliberate rejects
    assert (elsewhere / "out" / "summary.json").is_file()
    assert list((elsewhere / "out").glob("bundle-*.json"))
    validated = subprocess.run(
        [str(cli), "validate", "out", "--quiet"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
