"""binder/ as repo2docker reads it: repo2docker's own dry run (no Docker needed) writes the Dockerfile it would build."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A copy of binder/ and pyproject.toml: what repo2docker looks at."""
    repo = tmp_path_factory.mktemp("repo")
    shutil.copytree(BINDER, repo / "binder")
    shutil.copy(ROOT / "pyproject.toml", repo)
    return repo


@pytest.fixture(scope="module")
def dockerfile(repo) -> str:
    """The Dockerfile repo2docker would build (its dry run: ``--no-build --debug``)."""
    exe = Path(sys.executable).with_name("repo2docker")
    run = subprocess.run([str(exe), "--no-build", "--no-run", "--debug", str(repo)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_repo2docker_uses_binder_requirements_and_post_build(dockerfile):
    assert re.search(r'pip install --no-cache-dir -r "binder/requirements.txt"', dockerfile)
    assert "./binder/postBuild" in dockerfile
    assert "environment.yml" not in dockerfile  # the pip path, not a conda environment of ours
    assert not re.search(r"^FROM (?!docker.io/library/buildpack-deps)", dockerfile, re.M)  # no Dockerfile of ours


def test_runtime_is_pinned_and_matches_pyproject(repo, monkeypatch):
    from repo2docker.buildpacks import PythonBuildPack

    monkeypatch.chdir(repo)
    pack = PythonBuildPack("docker.io/library/buildpack-deps:24.04")
    assert pack.detect() and pack.binder_dir == "binder"
    runtime = (BINDER / "runtime.txt").read_text().strip()
    m = re.fullmatch(r"python-(3\.\d+)", runtime)
    assert m, f"binder/runtime.txt must pin a Python minor version like python-3.11; got {runtime!r}"
    assert pack.python_version == m.group(1), f"repo2docker picked Python {pack.python_version}, not {runtime}"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    low = re.search(r">=\s*3\.(\d+)", requires)
    assert low and int(m.group(1).split(".")[1]) >= int(low.group(1)), (runtime, requires)


def test_post_build_is_strict():
    lines = [ln.strip() for ln in (BINDER / "postBuild").read_text().splitlines()]
    assert lines[0] in ("#!/bin/bash", "#!/usr/bin/env bash")
    first = next(ln for ln in lines[1:] if ln and not ln.startswith("#"))
    assert first == "set -euo pipefail", f"postBuild must stop at the first failure; its first command is {first!r}"


def test_nothing_else_steers_repo2docker():
    """With binder/ present repo2docker ignores the root; inside binder/ only these files are ours."""
    assert {p.name for p in BINDER.iterdir()} == {"requirements.txt", "runtime.txt", "postBuild", "overrides.json"}
