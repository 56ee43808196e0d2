"""The kit's QAT fine-tune (:func:`qkit.qat.finetune`), recording how the learned grids move (lesson 06).

LSQ learns each quantizer's step ``s`` and PACT each clip ``α`` by gradient
descent, alongside the weights; min-max QAT instead *observes* ranges (an
exponential moving average of each batch's min and max, frozen after
``ema_steps`` batches). To see them evolve, :func:`finetune_with_history`
runs :func:`qkit.qat.finetune` itself (its ``on_step``/``on_epoch`` hooks) and
every ``every`` optimizer steps takes a :func:`snapshot` of every quantizer:

* ``step``: the grid's spacing ``scale`` (LSQ: ``|s|``; PACT: ``α / (2^b − 1)``;
  min-max: ``(hi − lo) / (2^b − 1)``), one number per activation point, one per
  output channel for a weight;
* ``top``: the largest value the grid holds, ``scale · (qmax − zero_point)``
  (PACT: ``α`` up to rounding; for a weight: ``qmax · scale``);
* ``method``: which rule moves it (``"lsq"``, ``"pact"``, ``"minmax"``).

The loss of every step and, given test data, the test accuracy after every
epoch are kept too. With the same seed the trained model is bit-identical to
:func:`qkit.qat.finetune`'s (tested): recording reads, it never changes.

Example:
    >>> from qkit import data, models, qat
    >>> X, y = data.digits("train")
    >>> m = qat.prepare(models.load("mlp"), w_bits=4, a_bits=4, method="lsq", calibration=X[:256])
    >>> h = finetune_with_history(m, X[:256], y[:256], epochs=2, every=2, progress=False)
    >>> h.steps                       # 256 images / 64 per batch = 4 steps an epoch; before step 0 too
    [0, 2, 4, 6, 8]
    >>> len(h.loss), len(h.epoch_loss), list(h.act), list(h.weight)
    (8, 2, ['x', 'relu', 'fc2'], ['fc1', 'fc2'])
    >>> s = h.act["relu"]["step"]                  # LSQ's step after the ReLU, read 5 times: it learns
    >>> len(s), s[-1] != s[0], h.act["relu"]["method"]
    (5, True, 'lsq')
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from qkit._checks import check_int
from qkit.qat.prepare import QATModel
from qkit.qat.quantizers import positive
from qkit.train import _check_xy, evaluate


@dataclass
class History:
    """What :func:`finetune_with_history` recorded.

    Attributes:
        steps: optimizer steps at which the grids were read (0 = before training).
        loss: the training loss (penalty included) of every step, in order.
        epoch_loss: the mean training loss of each epoch (what ``qat.finetune`` returns).
        epoch_acc: test accuracy after each epoch (empty without test data).
        act: ``{point: {"method": str, "step": [float per record], "top": [float per record]}}``.
        weight: ``{layer: {"method": str, "step": [(C,) tensor per record], "top": [...]}}``.
    """

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    epoch_acc: list[float] = field(default_factory=list)
    act: dict = field(default_factory=dict)
    weight: dict = field(default_factory=dict)

    def relative(self, kind: str, name: str, key: str = "step") -> list[float]:
        """``key`` of one quantizer over the records divided by its value before training (weights: the
        mean over channels of each channel's ratio).

        Example:
            >>> h = History(steps=[0, 5], act={"x": {"method": "lsq", "step": [0.5, 0.75], "top": [1, 1]}})
            >>> h.relative("act", "x")
            [1.0, 1.5]
        """
        if kind not in ("act", "weight"):
            raise ValueError(f"kind must be 'act' or 'weight'; got {kind!r}")
        table = self.act if kind == "act" else self.weight
        if name not in table:
            raise ValueError(f"no {kind} quantizer {name!r}; recorded: {list(table)}")
        values = table[name][key]
        first = torch.as_tensor(values[0], dtype=torch.float64)
        return [float((torch.as_tensor(v, dtype=torch.float64) / first).mean()) for v in values]


@torch.no_grad()
def snapshot(qat_model: QATModel) -> tuple[dict, dict]:
    """Every quantizer's current grid: ``({point: {...}}, {layer: {...}})`` with ``method``, ``step``, ``top``.

    Activation values are floats; weight values are ``(C,)`` float32 tensors (one per output channel;
    ``(1,)`` per tensor). Min-max points that have seen no batch yet are skipped.
    """
    acts = {}
    for name, q in qat_model.act_quantizers().items():
        if q.method == "minmax" and int(q.seen) == 0:
            continue
        qp = q.qparams()
        acts[name] = {"method": q.method, "step": float(qp.scale),
                      "top": float(qp.scale) * (qp.qmax - int(qp.zero_point))}
    weights = {}
    modules = dict(qat_model.graph_module.named_modules())
    for name, wq in qat_model.weight_quantizers().items():
        w = modules[name].weight
        if wq.bits == 1:
            step = wq.binary_scale(w).float()
        elif wq.method == "lsq":
            step = positive(wq.scale).float()
        else:
            step = wq.qparams(w).scale.float()
        step = step.detach().reshape(-1).clone()  # (C,) or (1,)
        weights[name] = {"method": wq.method, "step": step, "top": step * wq.qmax}
    return acts, weights


def _record(history: History, qat_model: QATModel, step: int) -> None:
    acts, weights = snapshot(qat_model)
    history.steps.append(step)
    for table, now in ((history.act, acts), (history.weight, weights)):
        for name, v in now.items():
            row = table.setdefault(name, {"method": v["method"], "step": [], "top": []})
            row["step"].append(v["step"])
            row["top"].append(v["top"])


def finetune_with_history(qat_model: QATModel, X: torch.Tensor, y: torch.Tensor, *, every: int = 10,
                          test: tuple[torch.Tensor, torch.Tensor] | None = None, epochs: int | None = None,
                          lr: float | None = None, seed: int = 0, progress: bool = True) -> History:
    """:func:`qkit.qat.finetune` (same recipe, same result for the same seed), recording the grids.

    Args:
        qat_model: what :func:`qkit.qat.prepare` returned; trained in place.
        X, y: training images (N, 1, 8, 8) float32 and labels (N,) int64.
        every: read every quantizer's grid every this many optimizer steps, and at step 0: after the
            first batch's forward pass (where a min-max point without calibration gets its range),
            before any update.
        test: optional ``(X_test, y_test)``: test accuracy after every epoch.
        epochs, lr: default ``qkit.qat.FINETUNE``'s.
        seed: the batch order and the shifts (as ``finetune``'s).
        progress: a progress bar over the epochs.

    Returns:
        A :class:`History`.

    Raises:
        TypeError: not a QATModel, or X/y not tensors.
        ValueError: ``every`` or ``epochs`` below 1, X and y of different lengths.
    """
    from qkit.qat import FINETUNE, finetune  # noqa: PLC0415 (qkit.qat imports this module's package)

    if not isinstance(qat_model, QATModel):
        raise TypeError(f"expected the model qkit.qat.prepare returned; got {type(qat_model).__name__}")
    _check_xy(X, y)
    if test is not None:
        if not isinstance(test, (tuple, list)) or len(test) != 2:
            raise TypeError(f"test must be a pair (X_test, y_test); got {type(test).__name__}")
        _check_xy(*test)
    every = check_int("every", every, low=1)
    epochs = check_int("epochs", FINETUNE["epochs"] if epochs is None else epochs, low=1)
    lr = FINETUNE["lr"] if lr is None else lr
    history = History()
    if qat_model.example is None:  # as finetune does: min-max points without calibration appear on a batch
        qat_model(X[:FINETUNE["batch_size"]])
    _record(history, qat_model, 0)

    def on_step(step: int, loss: float) -> None:
        history.loss.append(loss)
        if step % every == 0:
            _record(history, qat_model, step)

    def on_epoch(epoch: int) -> None:
        if test is not None:
            history.epoch_acc.append(evaluate(qat_model, *test))

    history.epoch_loss = finetune(qat_model, X, y, epochs=epochs, lr=lr, seed=seed, progress=progress,
                                  on_step=on_step, on_epoch=on_epoch)
    return history


__all__ = ["History", "finetune_with_history", "snapshot"]
