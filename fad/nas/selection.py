"""Perturbation-based selection of a searched cell (Wang et al., ICLR 2021, "Rethinking
Architecture Selection in Differentiable NAS", DARTS-PT).

The magnitude of an alpha often does not tell which candidate the supernet relies on (the paper,
section 3); DARTS-PT asks the supernet: on each edge it keeps the candidate whose removal raises
the validation loss most, and at each node the two incoming edges whose removal hurts most.
As in the paper's code, removing a candidate moves its softmax weight onto ``none`` (which
computes nothing) and leaves the others' as they are; removing an edge gives ``none`` all of it.
Given a fine-tuning step ``tune``, the selection is the paper's progressive form: each decision
is fixed (softmax weight 1 on the choice) and ``tune`` runs before the next is measured. Without
it every removal is measured on the supernet as given (fixing decisions without tuning jumps
weights to 1 on a supernet never trained for it: on the planted-cell benchmark's teacher 0 that
kept half the teacher's edges, against all of them with 10 tuning steps after each decision).
Edges are decided in cell order, not the paper's random order, so that a selection is
reproducible; the alphas are restored at the end (also on an error).
"""

import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Union

import torch

from fad.genotypes import NONE, Genotype, primitives

from .search_cells import SearchTower

__all__ = ["Selection", "perturbation_genotype"]

#: The supernet's validation loss at its current alphas and weights.
ValLossFn = Callable[[], Union[torch.Tensor, float]]


@dataclass(frozen=True)
class Selection:
    """The result of :func:`perturbation_genotype`.

    Attributes:
        genotype: the selected cell, in :func:`fad.genotypes.derive_genotype`'s format (per
            node the two edges, the one whose removal hurts most first).
        op_scores: per node i, a (2 + i, num_ops) tensor: the validation loss with each candidate
            removed (NaN for ``none``, never a choice).
        edge_scores: per node i, a (2 + i,) tensor: the validation loss with each edge removed.
        base_loss: the validation loss of the supernet as given.
        val_passes: how many times the validation loss was computed.
        seconds: wall time of the selection, fine-tuning included.
    """

    genotype: Genotype
    op_scores: List[torch.Tensor]
    edge_scores: List[torch.Tensor]
    base_loss: float
    val_passes: int
    seconds: float


def _without(row: torch.Tensor, k: int, none: int) -> torch.Tensor:
    """Alphas of one edge with candidate k's softmax weight moved onto ``none``."""
    out = row.clone()
    out[none] = torch.logaddexp(row[none], row[k])
    out[k] = -float("inf")
    return out


def _only(row: torch.Tensor, k: int) -> torch.Tensor:
    """Alphas of one edge whose softmax weight is all on candidate k."""
    out = torch.full_like(row, -float("inf"))
    out[k] = 0.0
    return out


def perturbation_genotype(
    tower: SearchTower,
    *,
    val_loss_fn: ValLossFn,
    tune: Optional[Callable[[], None]] = None,
) -> Selection:
    """Select a cell from a trained search tower by how much each removal hurts (DARTS-PT).

    For every edge, each candidate but ``none`` is removed in turn (the others keep their
    weights) and the one whose removal gives the highest validation loss is the edge's op; then
    for every node, each incoming edge is removed in turn and the two whose removal gives the
    highest loss are its edges. That is ``sum_i (2 + i) * (num_ops - 1)`` passes for the ops,
    ``sum_i (2 + i)`` for the edges, and one for the base loss (100 for FAD's 3-node, 10-op cell).

    Args:
        tower: the trained search tower; its alphas are changed during the selection and
            restored at the end.
        val_loss_fn: the supernet's validation loss (a scalar tensor or float) on fixed
            validation batches, computed with the tower's current alphas; it is called under
            ``torch.no_grad()``. Averaging across ranks is the closure's job (a distributed
            caller all-reduces inside it), so that every rank takes the same decisions.
        tune: the paper's short fine-tuning of the supernet's weights (not its alphas), called
            with gradients enabled after each decision, which is fixed first (see the module's
            docstring); default none: no decision is fixed, every removal is measured on the
            supernet as given.

    Returns:
        The :class:`Selection`: genotype, scores and cost.
    """
    start = time.perf_counter()
    names = primitives(dil3=tower.dil3)
    none = names.index(NONE)
    alphas = list(tower.alphas)
    backup = [a.detach().clone() for a in alphas]
    passes = 0

    def loss() -> float:
        nonlocal passes
        passes += 1
        with torch.no_grad():
            return float(val_loss_fn())

    def decided(i: int, rows: Dict[int, torch.Tensor]) -> None:
        """Fix the rows of node i's alphas that a decision settled, then tune (with ``tune``)."""
        if tune is not None:
            with torch.no_grad():
                for j, row in rows.items():
                    alphas[i][j] = row
            tune()

    try:
        base = loss()
        op_scores = [torch.full(a.shape, float("nan")) for a in alphas]
        for i, alpha in enumerate(alphas):
            for j in range(alpha.shape[0]):
                row = alpha[j].detach().clone()
                for k in range(len(names)):
                    if k == none:
                        continue
                    with torch.no_grad():
                        alpha[j] = _without(row, k, none)
                    op_scores[i][j, k] = loss()
                with torch.no_grad():
                    alpha[j] = row
                best = int(op_scores[i][j].nan_to_num(-float("inf")).argmax())
                decided(i, {j: _only(row, best)})
        ops = [s.nan_to_num(-float("inf")).argmax(dim=1) for s in op_scores]
        edge_scores, normal = [], []
        for i, alpha in enumerate(alphas):
            scores = torch.empty(alpha.shape[0])
            for j in range(alpha.shape[0]):
                row = alpha[j].detach().clone()
                with torch.no_grad():
                    alpha[j] = _only(row, none)
                scores[j] = loss()
                with torch.no_grad():
                    alpha[j] = row
            keep = scores.topk(2).indices.tolist()
            edge_scores.append(scores)
            normal.append([(names[ops[i][j]], j) for j in keep])
            decided(i, {j: _only(alpha[j], none) for j in range(alpha.shape[0]) if j not in keep})
    finally:
        with torch.no_grad():
            for a, b in zip(alphas, backup):
                a.copy_(b)
    return Selection(
        genotype=Genotype(normal=normal, normal_concat=range(2, 2 + len(normal))),
        op_scores=op_scores,
        edge_scores=edge_scores,
        base_loss=base,
        val_passes=passes,
        seconds=time.perf_counter() - start,
    )
