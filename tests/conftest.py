"""Shared test fixtures: the digits data and the zoo, loaded once per session; hypothesis profiles.

Fixtures (session scope: treat them as read-only, ``copy.deepcopy`` a model before changing it):

* ``digits_train``, ``digits_test``: ``(X, y)`` of ``qkit.data.digits("train")`` / ``("test")``;
* ``calibration``: the first 256 training images, the lessons' representative batch;
* ``zoo``: ``zoo["mlp"]`` is ``qkit.models.load("mlp")``, each model loaded on first use.

Lessons: ``-m lesson05`` (any of ``lesson01`` … ``lesson11``) selects one lesson's tests;
a file ``tests/test_exNN*.py`` is marked ``lessonNN`` without saying so.

Exercise tests (``tests/test_exNN.py``): a test that takes a ``question`` argument
runs once per entry of the module's ``QUESTIONS`` dict (``{"q1": q1, ...}``), with the
dict key as test id; a ``diagnostics`` argument next to it gets ``DIAGNOSTICS[key]``::

    def test_robustness(question, monkeypatch):
        assert_friendly_on_bad_code(question, monkeypatch)

Hypothesis: the default profile is hypothesis's own (what CI runs). For a quick
local loop, ``HYPOTHESIS_PROFILE=quick pytest ...`` loads the ``quick`` profile
(few examples, no deadline); tests that set ``max_examples`` themselves write
``max_examples=examples(200)`` (from ``hypothesis_profiles``) so the quick loop shortens them too.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
import torch

from hypothesis_profiles import load_profile
from qkit import data, models

# Checks run by the tests (and by the notebooks' kernels and JupyterLab, which inherit this
# environment) record progress in a file of this run, never in the user's own.
os.environ.setdefault("QKIT_PROGRESS", str(Path(tempfile.mkdtemp(prefix="qkit-test-")) / "progress.json"))

load_profile()

LESSONS = {f"lesson{n:02d}": title for n, title in enumerate(
    ["affine and scale maps", "quantizing tensors", "int8 kernels", "post-training quantization",
     "quantization-aware training", "learned quantization parameters", "partial quantization", "pruning",
     "knowledge distillation", "neural architecture search", "putting it together"], start=1)}


def pytest_configure(config) -> None:
    known = {line.split(":")[0].strip() for line in config.getini("markers")}  # pyproject.toml's
    for name, title in LESSONS.items():
        if name not in known:
            config.addinivalue_line("markers", f"{name}: tests of lesson {name[-2:]} ({title})")


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        match = re.match(r"test_ex(\d\d)", item.path.name)
        if match and f"lesson{match[1]}" in LESSONS and not item.get_closest_marker(f"lesson{match[1]}"):
            item.add_marker(getattr(pytest.mark, f"lesson{match[1]}"))


def _forcer(monkeypatch, module):
    """force(path): ``module.ENV = path`` for one test; the module's choice is forgotten before and after."""
    def force(path):
        monkeypatch.setenv(module.ENV, path)
        module.reset()
    return force


@pytest.fixture
def forced_matmul(monkeypatch):
    """force(name): QKIT_INT8_MATMUL=name for this test (qkit.kernels.engine)."""
    from qkit.kernels import engine
    yield _forcer(monkeypatch, engine)
    monkeypatch.delenv(engine.ENV, raising=False)
    engine.reset()


@pytest.fixture
def forced_conv(monkeypatch):
    """force(path): QKIT_INT8_CONV=path for this test (qkit.kernels.conv_engine)."""
    from qkit.kernels import conv_engine
    yield _forcer(monkeypatch, conv_engine)
    monkeypatch.delenv(conv_engine.ENV, raising=False)
    conv_engine.reset()


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module (``pytest.mark.usefixtures("one_thread")``): two threads on a shared,
    loaded machine run small layers many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits_train() -> tuple[torch.Tensor, torch.Tensor]:
    return data.digits("train")


@pytest.fixture(scope="session")
def digits_test() -> tuple[torch.Tensor, torch.Tensor]:
    return data.digits("test")


@pytest.fixture(scope="session")
def calibration(digits_train) -> torch.Tensor:
    return digits_train[0][:256]  # (256, 1, 8, 8) float32


class _Zoo(dict):
    """``zoo[name]`` loads ``models.load(name)`` once and keeps it."""

    def __missing__(self, name: str) -> torch.nn.Module:
        self[name] = models.load(name)
        return self[name]


@pytest.fixture(scope="session")
def zoo() -> dict:
    return _Zoo()


def pytest_generate_tests(metafunc) -> None:
    if "question" not in metafunc.fixturenames:
        return
    questions = getattr(metafunc.module, "QUESTIONS", None)
    if not isinstance(questions, dict):
        raise pytest.UsageError(f"{metafunc.module.__name__}: a test asks for `question` but the module "
                                "has no QUESTIONS dict ({'q1': q1, ...})")
    names = list(questions)
    if "diagnostics" in metafunc.fixturenames:
        diagnostics = metafunc.module.DIAGNOSTICS
        metafunc.parametrize(("question", "diagnostics"), [(questions[n], diagnostics[n]) for n in names],
                             ids=names)
    else:
        metafunc.parametrize("question", [questions[n] for n in names], ids=names)
