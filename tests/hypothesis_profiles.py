"""Hypothesis profiles: ``default`` (hypothesis's own, what CI runs) and ``quick`` (a fast local loop).

Select with the environment variable ``HYPOTHESIS_PROFILE=quick``. A test that
sets its own ``max_examples`` wraps the number in :func:`examples`, so the
quick profile shortens it too (an explicit ``@settings`` value beats any profile).
"""

from __future__ import annotations

import os

from hypothesis import settings

QUICK_EXAMPLES = 10
settings.register_profile("quick", max_examples=QUICK_EXAMPLES, deadline=None)


def profile_name() -> str:
    return os.environ.get("HYPOTHESIS_PROFILE", "default")


def load_profile() -> None:
    """Load the profile ``HYPOTHESIS_PROFILE`` names (``default`` if unset)."""
    settings.load_profile(profile_name())


def examples(n: int) -> int:
    """``n`` examples, or at most :data:`QUICK_EXAMPLES` under the quick profile."""
    return min(n, QUICK_EXAMPLES) if profile_name() == "quick" else n
