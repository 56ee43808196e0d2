"""The project installs one way everywhere: pyproject, Makefile, CI and Binder agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _normalise(req: str) -> tuple[str, str]:
    """('ipywidgets', '<9,>=8.1') from 'ipywidgets>=8.1,<9' (name lower-cased, specifiers sorted)."""
    m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", req)
    assert m, f"cannot parse requirement {req!r}"
    name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
    spec = ",".join(sorted(s.strip() for s in m.group(2).split(",") if s.strip()))
    return name, spec


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _binder_requirements() -> tuple[list[str], list[str]]:
    options, reqs = [], []
    for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            (options if line.startswith("-") else reqs).append(line)
    return options, reqs


def test_binder_dependencies_equal_pyproject():
    ours = {_normalise(r) for r in _pyproject()["project"]["dependencies"]}
    _, reqs = _binder_requirements()
    binder = {_normalise(r) for r in reqs}
    assert binder == ours, f"only in binder: {binder - ours}; only in pyproject: {ours - binder}"


def test_torch_is_pinned_to_the_cpu_build_everywhere():
    deps = dict(_normalise(r) for r in _pyproject()["project"]["dependencies"])
    assert deps["torch"] == "==2.13.0", "a looser torch spec pulls a multi-GB CUDA build"
    options, _ = _binder_requirements()
    assert any(o.startswith("--extra-index-url") and o.rstrip("/").endswith("/cpu") for o in options)
    make = (ROOT / "Makefile").read_text()
    assert '"torch==2.13.0"' in make


def test_binder_installs_the_kit_itself():
    post = ROOT / "binder" / "postBuild"
    assert post.stat().st_mode & 0o111, "postBuild must be executable"
    assert "pip install --no-deps ." in post.read_text()
    assert "overrides.json" in post.read_text() and (ROOT / "binder" / "overrides.json").exists()


def test_ci_and_readme_use_the_make_targets():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    head = (ROOT / "README.md").read_text().split("\n## ", 1)[0]
    assert "make lab" in head and "make test" in head
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab:", make, re.M) and re.search(r"^test:", make, re.M)


def test_shipped_files_are_declared_as_package_data():
    data = _pyproject()["tool"]["setuptools"]["package-data"]["qkit"]
    total = 0
    for pattern in data:
        folder, glob = pattern.split("/")
        for path in (ROOT / "qkit" / folder).glob(glob):
            total += path.stat().st_size
            assert path.stat().st_size < 5_000_000, f"{path} is too big to ship in the repo"
    assert total < 8_000_000, f"shipped data and weights add up to {total:,} bytes (budget 8 MB)"
    assert list((ROOT / "qkit" / "data").glob("*.npz")) and list((ROOT / "qkit" / "zoo").glob("*.pt"))
