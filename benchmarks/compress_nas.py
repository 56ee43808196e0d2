"""Architecture search on the digits: issue 10's NAS budgets, measured.

Run: ``python benchmarks/compress_nas.py [--quick]`` (or through ``bench_compress.py --parts nas``).

* **found vs the zoo**: within the notebook's trial budget (``qkit/results/nas.py``'s ``trials``,
  ``max_params``), each strategy's search (seed 0, the 3-epoch proxy) picks an architecture; it is
  retrained with the zoo's recipe on the whole training split over 3 seeds and measured on the test
  split (accuracy: the mean over the seeds; parameters; file bytes of ``qkit.measure.model_size``;
  latency: the fastest of 20 passes of 256 test images). Budget: no zoo model (pretrained, test
  accuracy measured here) is both at most as large and at least as accurate, i.e. the found model
  is on or beyond the zoo's front.
* **evolution vs random**: both strategies over 10 seeds under the same budget and limit, on the
  stored table of proxy estimates; the mean best-so-far at the budget of each and how many seeds
  evolution wins. Reported as measured: there is no budget on who wins.
* **proxy**: Spearman's rank correlation of the proxy with full training on the stored sample.

Without ``--quick`` the found models are retrained here (about 20 s each on one thread, and the
search's proxies once); with ``--quick`` their accuracies, sizes and latencies come from the grid
``qkit/results/nas.json`` (made by the same code: ``python -m qkit.results.make nas``).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from qkit import data, models, nas, results  # noqa: E402
from qkit.nas.compare import StoredTable, race, summarize  # noqa: E402
from qkit.results.make import compute_point  # noqa: E402
from qkit.train import evaluate  # noqa: E402

SEEDS = range(10)  # searches per strategy for the race


def zoo_points() -> dict[str, tuple[int, float]]:
    """``{name: (parameters, test accuracy)}`` of every pretrained zoo model, measured now."""
    Xt, yt = data.digits("test")
    out = {}
    for name in models.names():
        model = models.load(name)
        out[name] = (sum(p.numel() for p in model.parameters()), evaluate(model, Xt, yt))
    return out


def found_points(strategy: str, quick: bool) -> list[dict]:
    """The grid's ``found`` points of ``strategy``, one per retrain seed: stored (quick) or recomputed now."""
    grid = results.load("nas")
    seeds = grid["args"]["retrain_seeds"]
    if quick:
        return [results.lookup(grid["rows"], kind="found", strategy=strategy, seed=s) for s in seeds]
    torch.set_num_threads(1)
    return [compute_point("nas", {"kind": "found", "strategy": strategy, "seed": s}) for s in seeds]


def dominated_by(params: int, accuracy: float, zoo: dict) -> list[str]:
    """Zoo models at most as large and at least as accurate, better in one of the two.

    Example:
        >>> dominated_by(5000, 0.98, {"a": (4000, 0.99), "b": (9000, 0.99), "c": (5000, 0.98)})
        ['a']
    """
    return [n for n, (p, a) in zoo.items() if p <= params and a >= accuracy and (p < params or a > accuracy)]


def budgets(quick: bool = False) -> list[dict]:
    grid = results.load("nas")
    args = grid["args"]
    zoo = zoo_points()
    rows = []
    for strategy in args["strategies"]:
        pts = found_points(strategy, quick)
        acc = statistics.mean(p["accuracy"] for p in pts)
        beaten_by = dominated_by(pts[0]["params"], acc, zoo)
        smallest = min(zoo, key=lambda n: zoo[n][0])
        rows.append(dict(
            name=f"{strategy}'s found model on the zoo's front", value=acc,
            budget="no zoo model smaller and as accurate", passed=not beaten_by,
            detail=(f"{pts[0]['arch']}: {pts[0]['params']:,} params, {pts[0]['file_bytes']:,} file bytes, "
                    f"{min(p['latency_ms'] for p in pts):.2f} ms/256 images, test acc "
                    + "/".join(f"{p['accuracy']:.4f}" for p in pts)
                    + f" over seeds {args['retrain_seeds']}; the smallest zoo model, {smallest}: "
                    + f"{zoo[smallest][0]:,} params, {zoo[smallest][1]:.4f}"
                    + (f"; dominated by {beaten_by}" if beaten_by else ""))))
    table = StoredTable.from_grid(grid)
    s = summarize(race(nas.SPACE, trials=args["trials"], seeds=SEEDS, table=table, max_params=args["max_params"]))
    rows.append(dict(
        name=f"evolution vs random, best at {s['trials']} trials", value=s["evolution"],
        budget="reported, none on who wins", passed=True,
        detail=(f"mean best proxy over {s['seeds']} seeds: evolution {s['evolution']:.4f}, random {s['random']:.4f}; "
                f"evolution wins {s['wins']}, ties {s['ties']}, loses {s['seeds'] - s['wins'] - s['ties']}"
                f" (limit {args['max_params']:,} params; "
                + ("evolution ahead" if s["evolution"] > s["random"] else "evolution not ahead") + ")")))
    full = {r["arch"]: r["full"] for r in grid["rows"] if r["kind"] == "full"}
    rho = nas.spearman([table.estimates[k] for k in full], list(full.values()))
    rows.append(dict(name="proxy's Spearman rank correlation", value=rho, budget="reported", passed=True,
                     detail=f"{len(full)} architectures trained fully (stored grid)"))
    return rows


def main() -> None:
    from bench_compress import run_part

    run_part(__doc__, budgets, "found models from the stored grid (no retraining)")


if __name__ == "__main__":
    main()
