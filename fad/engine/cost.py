"""Cost-aware search (beyond the paper; docs/BENCHMARKS.md#cost-aware-search): the candidates'
cost table, computed once when a search starts, and the alpha step's cost term, on the costs
divided by the largest (which hardly depend on the input size: one ``search.cost_weight`` means
the same at any size)."""

import logging
import statistics
import sys
import time
from typing import List, Mapping, Optional, Sequence, Tuple

import detectron2.data.transforms as T
import torch
from detectron2.config import instantiate
from detectron2.utils.events import EventStorage
from fvcore.nn import FlopCountAnalysis
from omegaconf import DictConfig

from fad.genotypes import NONE, Genotype, primitives
from fad.nas.architect import average_across_ranks
from fad.nas.ops import build_op
from fad.nas.search_cells import SearchTower

logger = logging.getLogger(__name__)

#: The kinds of ``search.cost`` and the unit of each.
UNITS = {"flops": "GFLOPs", "latency": "ms"}


def cost_image_size(loader: DictConfig) -> Tuple[int, int]:
    """The cost table's input (height, width): the largest image of the ``ResizeShortestEdge``
    of a loader config (``dataloader.arch``), (short side, max size)."""
    augmentations = loader.get("mapper", {}).get("augmentations", [])
    resize = [a for a in instantiate(augmentations) if isinstance(a, T.ResizeShortestEdge)]
    if not resize or resize[0].max_size >= sys.maxsize:  # its default: no limit
        why = "its ResizeShortestEdge has no max_size" if resize else "it has no ResizeShortestEdge"
        raise ValueError(f"dataloader.arch.mapper.augmentations: {why}, which the cost table needs")
    return int(max(resize[0].short_edge_length)), int(resize[0].max_size)


def feature_sizes(image_size: Tuple[int, int], strides: Sequence[int]) -> Tuple[Tuple[int, int]]:
    """(height, width) of each FPN level of an image: ceil(size / stride) per stride."""
    h, w = image_size
    return tuple((-(-h // s), -(-w // s)) for s in strides)


def _gflops(op: torch.nn.Module, x: torch.Tensor) -> float:
    """fvcore's count of ``op(x)`` (1 FLOP = 1 multiply-add), in GFLOPs."""
    count = FlopCountAnalysis(op, (x,)).unsupported_ops_warnings(False)
    return count.uncalled_modules_warnings(False).total() / 1e9


def _latencies(ops: Sequence[torch.nn.Module], inputs: Sequence[torch.Tensor]) -> List[float]:
    """Per op, the median over 25 rounds (after 3) of its time (ms) on all the inputs; the ops
    take turns in each round, so that a busy spell of the machine hits all of them alike."""
    sync = torch.cuda.synchronize if inputs[0].is_cuda else (lambda: None)
    times = [[] for _ in ops]
    for _ in range(3 + 25):
        for op, op_times in zip(ops, times):
            sync()
            start = time.perf_counter()
            for x in inputs:
                op(x)
            sync()
            op_times.append((time.perf_counter() - start) * 1e3)
    return [statistics.median(t[3:]) for t in times]


def op_costs(
    *,
    ops: Sequence[str],
    channels: int,
    sizes: Sequence[Tuple[int, int]],
    cost: str = "flops",
    device: str = "cpu",
) -> torch.Tensor:
    """The cost of each candidate op of width ``channels`` built alone, summed over levels.

    Args:
        ops: candidate names in alpha order (``none`` costs 0).
        sizes: (height, width) of each level; the inputs are (1, channels, height, width).
        cost: ``"flops"`` (fvcore, GFLOPs) or ``"latency"`` (ms, on ``device``).

    Returns:
        (len(ops),) float64 costs on the CPU.
    """
    real = [name for name in ops if name != NONE]
    # Seeded, in a forked RNG: the search's random state must not depend on computing a table.
    devices = [torch.device(device)] if device != "cpu" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(0)
        modules = [build_op(name, channels=channels).eval().to(device) for name in real]
        inputs = [torch.randn(1, channels, h, w, device=device) for h, w in sizes]
        if cost == "latency":
            values = _latencies(modules, inputs)
        else:
            values = [sum(_gflops(m, x) for x in inputs) for m in modules]
    by_name = dict(zip(real, values))
    return torch.tensor([by_name.get(name, 0.0) for name in ops], dtype=torch.float64)


class CostTable:
    """The per-candidate costs of a search and the costs computed from them.

    Args:
        ops: candidate names in alpha order, ``none`` last.
        costs: (len(ops),) cost of each candidate, ``none`` at 0.
        cost: ``"flops"`` or ``"latency"``.
    """

    def __init__(self, *, ops: Sequence[str], costs: torch.Tensor, cost: str):
        costs = torch.as_tensor(costs, dtype=torch.float64).cpu()
        if tuple(costs.shape) != (len(ops),):
            raise ValueError(f"costs must have shape ({len(ops)},), got {tuple(costs.shape)}")
        if ops[-1] != NONE or costs[-1] != 0:
            raise ValueError("the last candidate must be 'none', at cost 0")
        if not (costs[:-1] > 0).all():
            raise ValueError(f"every real candidate must cost more than 0, got {costs.tolist()}")
        self.ops, self.costs, self.unit = tuple(ops), costs, UNITS[cost]
        #: (len(ops),) the costs divided by the largest: what the alpha step's loss uses.
        self.normalised = (costs / costs.max()).float()

    def expected_cost(self, towers: Mapping[str, SearchTower]) -> torch.Tensor:
        """The alpha step's cost term: the searched towers' expected normalised cost, a scalar
        differentiable with respect to their alphas."""
        return sum(tower.expected_cost(self.normalised) for tower in towers.values())

    def genotype_cost(self, genotype: Genotype, *, num_cells: int = 1) -> float:
        """The cost in :attr:`unit` of a derived tower's edges' ops, times its cells (not of the
        1x1 convs, the same for every genotype)."""
        ops = [op for node in genotype.normal for op, _ in node]
        return num_cells * sum(float(self.costs[self.ops.index(op)]) for op in ops)

    def log(
        self,
        *,
        towers: Mapping[str, SearchTower],
        genotypes: Mapping[str, Optional[Genotype]],
        storage: EventStorage,
        iteration: int,
    ) -> None:
        """Puts the towers' expected (normalised) and derived costs, in all and per tower
        (``cost/expected``, ``cost/derived_<unit>``, ``cost/<tower>/...``), into ``storage``
        and the log line of ``iteration`` (the iterations done).

        Args:
            towers: the searched towers by name; genotypes: their genotypes by name.
        """
        unit = self.unit.lower()
        with torch.no_grad():
            expected = {n: float(t.expected_cost(self.normalised)) for n, t in towers.items()}
        derived = {
            n: self.genotype_cost(genotypes[n], num_cells=len(t.cells)) for n, t in towers.items()
        }
        scalars = {}
        for kind, costs in (("expected", expected), (f"derived_{unit}", derived)):
            scalars[f"cost/{kind}"] = sum(costs.values())
            scalars.update({f"cost/{n}/{kind}": v for n, v in costs.items()})
        storage.put_scalars(**scalars, smoothing_hint=False)
        logger.info(
            f"Cost at iteration {iteration}: expected {scalars['cost/expected']:.3f} (normalised: "
            f"1 = the most expensive candidate on one edge), derived towers' ops "
            f"{scalars[f'cost/derived_{unit}']:.4f} {self.unit} "
            f"({', '.join(f'{n} {v:.4f}' for n, v in derived.items())})"
        )


def build_cost_table(
    *, model: torch.nn.Module, image_size: Tuple[int, int], cost: str = "flops"
) -> CostTable:
    """The cost table of a search-mode FAD model's candidates.

    Args:
        model: the unwrapped detector, on its device: its searched towers give the op width and
            the candidates, its backbone the strides of the head's FPN levels.
        image_size: (height, width) of the input (:func:`cost_image_size`).
        cost: ``"flops"`` or ``"latency"`` (averaged across ranks: one table on every rank).
    """
    widths = {(t.op_channels, t.dil3) for t in model.search_towers().values()}
    if len(widths) != 1:
        raise ValueError(f"a cost table needs search towers of one op width, got {widths}")
    channels, dil3 = widths.pop()
    shapes = model.backbone.output_shape()
    sizes = feature_sizes(image_size, [shapes[f].stride for f in model.head_in_features])
    device = next(model.parameters()).device
    ops = primitives(dil3=dil3)
    costs = op_costs(ops=ops, channels=channels, sizes=sizes, cost=cost, device=str(device))
    if cost == "latency":
        costs = costs.to(device)
        average_across_ranks([costs])
    table = CostTable(ops=ops, costs=costs, cost=cost)
    rows = "\n".join(
        f"  {name:34s} {float(c):10.4f} {table.unit}  {float(n):.3f}"
        for name, c, n in zip(table.ops, table.costs, table.normalised)
    )
    logger.info(
        f"Cost table ({cost}, op width {channels}, {image_size[0]}x{image_size[1]} input, "
        f"levels {', '.join(f'{h}x{w}' for h, w in sizes)}):\n{rows}"
    )
    return table
