"""``qat.prepare``: a trainable copy of a float model that simulates its integer deployment.

Where to put fake quantization is not a guess: it is exactly where the integer
model of :func:`qkit.ptq.convert` requantizes. That converter asks for one
calibrated grid per such point (the model input, every conv/linear output after
its fused ReLU, every residual add, concatenation and global pool, every float
island read by an integer op), so :func:`requant_points` runs it once on the
float graph and records which grids it asked for. The prepared model is that
graph with an :class:`~qkit.qat.quantizers.ActQuant` after each point and every
conv/linear weight fake-quantized; max-pool, flatten and a lone ReLU keep their
input's grid in the integer model, and so they do here.

**BatchNorm: fold, then train.** Every BatchNorm is folded into the conv before
it (:func:`qkit.graph.fold_batchnorm`) before training starts, so the trained
graph *is* the deployed one: the weights QAT quantizes are the folded weights.
Jacob et al. (2018) instead keep BatchNorm during QAT and simulate the fold
with batch statistics, then switch to running statistics (their Fig. C.8):
closer to float training, but two graphs to keep in step. Our fine-tunes are
short and start from trained statistics, and BatchNorm's batch statistics
would let training see values deployment never computes, so we fold first.
The price: no normalisation while fine-tuning, so keep learning rates small.
"""

from __future__ import annotations

import torch
import torch.fx as fx
from torch import nn

from qkit.graph import fold_batchnorm, set_module
from qkit.ptq.calibrate import Calibration, check_calibration, record_ranges
from qkit.ptq.convert import ALIAS_MODULES, PASS_CALLS, PASS_MODULES, RELU_CALLS, RELU_MODULES, convert_int8
from qkit.qat.quantizers import ActQuant, qat_layer


class _Asked(dict):
    """A dict of observers that remembers which keys the converter read (each grid it needed)."""

    def __init__(self, observers: dict) -> None:
        super().__init__(observers)
        self.asked: list[str] = []

    def __getitem__(self, key):
        if key not in self.asked:
            self.asked.append(key)
        return super().__getitem__(key)


def requant_points(gm: fx.GraphModule, x: torch.Tensor, skip=()) -> tuple[list[str], Calibration]:
    """The nodes of ``gm`` whose value the integer model requantizes, in graph order, and their calibration.

    Example:
        >>> m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
        >>> points, _ = requant_points(fx.symbolic_trace(m), torch.randn(4, 1, 4, 4))
        >>> points       # the input, conv+ReLU (after the ReLU: fused), the linear; not the flatten
        ['input_1', '_1', '_3']
    """
    cal = record_ranges(gm, x)
    asked = _Asked(cal.observers)
    convert_int8(gm, Calibration(asked, cal.meta), backend="eager", skip=skip)
    order = [n.name for n in gm.graph.nodes]
    return sorted(asked.asked, key=order.index), cal


# Ops that keep their input's grid in the integer model (the converter's own lists): the value after them
# is still on the grid of the quantizer before them.
PASS_MODULES = ALIAS_MODULES + PASS_MODULES + tuple(RELU_MODULES)
PASS_TARGETS = set(PASS_CALLS) | set(RELU_CALLS)


def _link_inputs(gm: fx.GraphModule, targets: set) -> None:
    """Tell each QAT layer which activation quantizer's grid its input is on (through max-pool, flatten, …)."""
    modules = dict(gm.named_modules())
    for n in gm.graph.nodes:
        layer = modules.get(n.target) if n.op == "call_module" else None
        if not hasattr(layer, "wq"):
            continue
        src = _source(n.args[0], modules, targets)
        if src is not None:
            layer.__dict__["input_quant"] = modules[src.target]


def _source(n, modules: dict, targets: set):
    """The ActQuant node whose grid ``n``'s value is on (through max-pool, flatten, …), or None."""
    while isinstance(n, fx.Node) and n.op != "placeholder" and n.target not in targets and (
            (n.op == "call_module" and isinstance(modules[n.target], PASS_MODULES))
            or n.op in ("call_function", "call_method") and n.target in PASS_TARGETS):
        n = n.args[0]
    return n if isinstance(n, fx.Node) and n.op == "call_module" and n.target in targets else None


def _link_pools(gm: fx.GraphModule, targets: set, cal: Calibration) -> None:
    """Tell the quantizer after each global average pool of a quantized value its input grid and H·W."""
    modules = dict(gm.named_modules())
    for n in gm.graph.nodes:
        if not (n.op == "call_module" and n.target in targets):
            continue
        pool = n.args[0]
        is_pool = pool.op == "call_module" and isinstance(modules.get(pool.target), nn.AdaptiveAvgPool2d) or (
            pool.op in ("call_function", "call_method") and getattr(pool.target, "__name__", "") in (
                "mean", "adaptive_avg_pool2d"))
        src = _source(pool.args[0], modules, targets) if is_pool and pool.args else None
        node = pool.args[0] if src is not None else None  # the pool's input (its shape was recorded
        if node is not None and node.op == "call_module" and node.target in targets:  # before the
            node = node.args[0]  # quantizers went in: an ActQuant has its input's shape)
        meta = cal.meta.get(node.name) if node is not None else None
        if isinstance(meta, tuple) and len(meta[1]) == 4:
            modules[n.target].__dict__["pool_of"] = (modules[src.target], meta[1][2] * meta[1][3])


class QATModel(nn.Module):
    """What :func:`qkit.qat.prepare` returns: a float-in/float-out trainable model (``self.graph_module``).

    Attributes:
        config: the keywords it was prepared with (read by :func:`qkit.qat.convert`).
        points: ``{node name: ActQuant target}``, one per requantization point.
        example: a few calibration inputs (finds the graph's shapes again at conversion).
    """

    def __init__(self, gm: fx.GraphModule, config: dict, calibration: torch.Tensor | None) -> None:
        super().__init__()
        self.graph_module = gm
        self.config = config
        self.points: dict[str, str] = {}
        self.example = None
        if calibration is not None:
            self._insert(calibration)

    def _insert(self, x: torch.Tensor) -> None:
        """Find the requantization points on ``x`` and put an initialised ActQuant after each."""
        gm = self.graph_module
        points, cal = requant_points(gm, x, self.config["skip"])
        samples = _samples(gm, x, points)
        nodes = {n.name: n for n in gm.graph.nodes}
        ends = self.config.get("keep_ends")
        for i, name in enumerate(points):
            target = f"act_quant_{i}"
            sample, features = samples[name]
            bits = ends if ends is not None and i in (0, len(points) - 1) else self.config["a_bits"]
            gm.add_submodule(target, ActQuant(bits, self.config["method"], sample, features=features,
                                              ema_steps=self.config["ema_steps"],
                                              learn_zero_point=self.config.get("learn_zero_point", False)))
            node = nodes[name]
            with gm.graph.inserting_after(node):
                fq = gm.graph.call_module(target, (node,))
            node.replace_all_uses_with(fq, delete_user_cb=lambda user: user is not fq)
            self.points[name] = target
        gm.recompile()
        _link_inputs(gm, set(self.points.values()))
        _link_pools(gm, set(self.points.values()), cal)
        self.example = x[:8].detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.example is None:  # minmax without calibration: the first batch finds the points
            self._insert(check_calibration(x.detach()))
        return self.graph_module(x)

    def act_quantizers(self) -> dict[str, ActQuant]:
        """``{node name: ActQuant}`` in graph order."""
        return {name: self.graph_module.get_submodule(t) for name, t in self.points.items()}

    def weight_quantizers(self) -> dict:
        """``{layer name: WeightQuant}`` for every quantized conv/linear layer."""
        return {name: m.wq for name, m in self.graph_module.named_modules() if hasattr(m, "wq")}

    def param_groups(self, lr: float, grid_lr: float) -> list[dict]:
        """Optimizer groups: the layers' weights and biases at ``lr``, the grids' own parameters (LSQ steps,
        PACT clips, LSQ+ zero points) at ``grid_lr``."""
        grid, rest = [], []
        for name, p in self.named_parameters():
            is_grid = name.rsplit(".", 1)[-1] in ("scale", "alpha", "zero_point") and (
                ".wq." in name or ".act_quant_" in name)
            (grid if is_grid else rest).append(p)
        return [g for g in ({"params": rest, "lr": lr}, {"params": grid, "lr": grid_lr}) if g["params"]]

    def penalty(self) -> torch.Tensor:
        """PACT's L2 regulariser ``λ · Σ α²`` over the learned clips (0 for the other methods)."""
        alphas = [q.alpha for q in self.act_quantizers().values() if q.method == "pact"]
        if not alphas:
            return torch.zeros(())
        return self.config["pact_decay"] * torch.stack([a * a for a in alphas]).sum()


class _Grab(fx.Interpreter):
    """Runs the graph and keeps the values of the nodes in ``wanted``, flattened."""

    def __init__(self, gm: fx.GraphModule, wanted: set) -> None:
        super().__init__(gm)
        self.wanted, self.values, self.features = wanted, {}, {}

    def run_node(self, n: fx.Node):
        value = super().run_node(n)
        if n.name in self.wanted:
            self.values.setdefault(n.name, []).append(value.detach().reshape(-1).float())
            self.features[n.name] = value[0].numel() if value.dim() else 1
        return value


@torch.no_grad()
def _samples(gm: fx.GraphModule, x: torch.Tensor, names: list[str]) -> dict[str, tuple[torch.Tensor, int]]:
    """Each named node's float values on the batch ``x``, flattened (what initialises its grid), and
    how many values one sample has there (LSQ's N)."""
    grab = _Grab(gm, set(names))
    was = gm.training
    gm.eval()
    try:
        for i in range(0, len(x), 256):
            grab.run(x[i:i + 256])
    finally:
        gm.train(was)
    return {name: (torch.cat(grab.values[name]), grab.features[name]) for name in names}


def swap_weights(gm: fx.GraphModule, w_bits, method: str, per_channel: bool, skip) -> None:
    """Replace every conv/linear layer not in ``skip`` by its QAT twin (weights fake-quantized at its bits)."""
    for name, mod in list(gm.named_modules()):
        if isinstance(mod, (nn.Conv2d, nn.Linear)) and name not in skip:
            bits = w_bits.get(name, 8) if isinstance(w_bits, dict) else w_bits
            set_module(gm, name, qat_layer(mod, bits, method, per_channel))


def build(model: nn.Module, config: dict, calibration: torch.Tensor | None) -> QATModel:
    """Fold BatchNorm, swap in QAT layers, insert the activation quantizers (see the module docstring)."""
    gm = fold_batchnorm(model)
    swap_weights(gm, config["w_bits"], config["method"], config["per_channel"], config["skip"])
    return QATModel(gm, config, calibration).train()
