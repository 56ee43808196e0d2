"""Comparing a recomputed grid point with the stored one (shared by the grid tests).

Each stored row records ``qkit.kernels.engine.float_path()`` of the machine that made it: torch's
CPU capability and the CPU model. On a machine with the same float path a recomputed value must
equal the stored one bit for bit. Elsewhere the float kernels sum in other orders and a training
can move a few test answers, so there the values must agree within ``tol``.

Rows made before the CPU model was recorded hold the capability alone (``"AVX512"``). That does not
name a float path: an Intel Xeon and an AMD EPYC both report AVX512 and round differently, so such
rows are compared within ``tol`` on every machine.
"""

from __future__ import annotations

from qkit.kernels.engine import float_path


def same_path(stored: str) -> bool:
    """Whether the row's recorded float path is this machine's."""
    return stored == float_path()


def same_or_close(stored: float, fresh: float, path: str, tol: float = 0.01) -> None:
    """Equal on the same float path; within ``tol`` (accuracy as a fraction; 0.01 = 1 point) elsewhere."""
    if same_path(path):
        assert fresh == stored, (fresh, stored)
    else:
        assert abs(fresh - stored) <= tol, (fresh, stored, tol)
