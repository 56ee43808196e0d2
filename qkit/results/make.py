"""``python -m qkit.results.make NAME [NAME ...] [--jobs N]``: compute grids and write their JSON.

Deterministic: one torch thread per worker, every seed inside the points. ``--jobs``
spreads the points over worker processes (results do not depend on it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from qkit.results import grid_module, path

# spawn, not fork: a forked worker can hang on thread pools the parent already started
# (ONNX Runtime or torch may have started theirs in this process before the pool exists)
SPAWN = multiprocessing.get_context("spawn")


def compute_point(name: str, point: dict) -> dict:
    """One point of grid ``name``, on one thread."""
    torch.set_num_threads(1)
    return {**point, **grid_module(name).compute(point)}


def make(name: str, jobs: int = 1, progress: bool = True) -> dict:
    """Compute every point of grid ``name`` and write ``qkit/results/NAME.json``; return what was written."""
    module = grid_module(name)
    points = module.points(module.ARGS)
    start = time.perf_counter()
    if jobs > 1:
        with ProcessPoolExecutor(jobs, mp_context=SPAWN) as pool:
            rows = list(pool.map(compute_point, [name] * len(points), points))
    else:
        rows = []
        for i, p in enumerate(points):
            rows.append(compute_point(name, p))
            if progress:
                print(f"{name}: {i + 1}/{len(points)} {p}", flush=True)
    out = {"name": name, "args": module.ARGS, "torch": torch.__version__,
           "seconds": round(time.perf_counter() - start, 1), "rows": rows}
    path(name).write_text(json.dumps(out, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m qkit.results.make", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="grids to compute (modules of qkit/results)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    args = parser.parse_args(argv)
    for name in args.names:
        grid_module(name)  # a typo fails before any work
    for name in args.names:
        out = make(name, args.jobs)
        print(f"wrote {path(name)}: {len(out['rows'])} points in {out['seconds']} s")


if __name__ == "__main__":
    main()
