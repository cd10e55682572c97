"""The search tower edge by edge: the reference its one (grouped) forward is tested against.

Every edge runs alone, its mixed op computes each candidate as docs/METHOD.md section 3's table
says and weights it by name, the tower runs level by level: none of the stacking, the folded
candidate weights or the candidate order of :mod:`fad.nas.mixed_op`. It dispatches the ops the
edge-by-edge forward of commit 60478c4 dispatched. ``benchmarks/
bench_search_cell.py`` times it against the tower's forward.
"""

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F

from fad.nas.cell_base import sum_edges
from fad.nas.mixed_op import RepShareMixedOp

BASE_NAMES = ("std_conv_3x3", "sinSep_conv_3x3")  # the chains of RepShareMixedOp, in order


def sharing_mixed_op(op: RepShareMixedOp, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_i weights[i] * candidate_i(x)``, each candidate computed and weighted apart (the
    decouple convs' weights scale their kernels, as the forward before the grouped one did)."""
    w = dict(zip(op.primitives, weights.unbind(0)))
    out = None
    for chain, base in zip(op.chains, BASE_NAMES):
        l1 = chain.layers[0](x)
        y = F.conv2d(l1, chain.decouple[0].weight * w[base])
        y = torch.addcmul(y, chain.dil[0](l1), w[base + "+dil_conv_3x3"])
        if chain.dil3 is not None:
            y = torch.addcmul(y, chain.dil3(l1), w[base + "+dil_conv_3x3_r3"])
        l2 = chain.layers[1](l1)
        y = y + F.conv2d(l2, chain.decouple[1].weight * w[base + "_x2"])
        y = torch.addcmul(y, chain.dil[1](l2), w[base + "_x2+dil_conv_3x3"])
        y = torch.addcmul(y, chain.layers[2](l2), w[base + "_x3"])
        out = y if out is None else out + y
    return out


def cell_forward(cell, s0: torch.Tensor, s1: torch.Tensor, weights: Sequence[torch.Tensor]):
    """A search cell's output, (N, num_nodes * C_node, H, W), its edges run one by one."""
    states = [cell.preprocess[0](s0), cell.preprocess[1](s1)]
    for edges, w in zip(cell.dag, weights):
        outs = []
        for (pre, op, post), s, wj in zip(edges, states, w):
            x = pre(s)
            y = sharing_mixed_op(op, x, wj) if isinstance(op, RepShareMixedOp) else op(x, wj)
            outs.append(post(y))
        states.append(sum_edges(outs))
    return torch.cat(states[2:], dim=1)


def tower_forward(
    tower, s0s: Sequence[torch.Tensor], s1s: Optional[Sequence[torch.Tensor]] = None
) -> List[torch.Tensor]:
    """What ``tower(s0s, s1s)`` returns, for a :class:`fad.nas.search_cells.SearchTower`."""
    weights = [a.softmax(dim=-1) for a in tower.alphas]
    outs = []
    for s0, s1 in zip(s0s, s0s if s1s is None else s1s):
        for cell in tower.cells:
            s0, s1 = s1, cell_forward(cell, s0, s1, weights)
        outs.append(s1)
    return outs
