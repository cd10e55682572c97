"""The FAD towers a head's config builds (docs/METHOD.md sections 5-7).

``model.head.box_tower`` and ``model.head.cls_tower`` each hold one of these, or ``None`` for the
detector's own conv tower: a search tower in a search config, a derived tower with its genotype
in a training config. A tower's options are its own (``model.head.box_tower.op_channels=128``,
``model.head.cls_tower.dil3=True``); its inputs have the FPN width.
"""

from detectron2.config import LazyCall as L

from fad.nas.derived_cells import DerivedTower
from fad.nas.search_cells import SearchTower


def search_tower(*, op_channels=96, dil3=False, share=True):
    """One search cell of three nodes, op width C = 96, as searched in the paper.

    Args:
        op_channels: C, the width of the candidate ops (256 in the mask tower).
        dil3: the 12-candidate space with the dilation-3 ops.
        share: representation sharing (``False``: the plain DARTS mixed op, the ablation).
    """
    return L(SearchTower)(
        in_channels=256, op_channels=op_channels, num_cells=1, num_nodes=3, dil3=dil3, share=share
    )


def derived_tower(genotype, *, op_channels=96, num_cells=2):
    """Cells of ``genotype``: two of op width 96 in a detector head, as trained in the paper.

    The config holds the genotype as plain data (``genotype`` is a :class:`fad.genotypes.Genotype`,
    or ``"???"``, a value ``--genotype-file`` must supply), so the run's config.yaml records it and
    ``model.head.box_tower.genotype.normal.0.0=[std_conv_3x3,1]`` overrides one edge.
    """
    plain = genotype if isinstance(genotype, str) else genotype.to_plain()
    return L(DerivedTower)(
        genotype=plain, in_channels=256, op_channels=op_channels, num_cells=num_cells, num_nodes=3
    )


def mask_tower(genotype=None):
    """The mask tower of the original code (docs/METHOD.md section 11): one cell of three nodes
    at op width 256, the RoI width; a search tower, or derived from ``genotype``."""
    if genotype is None:
        return search_tower(op_channels=256)
    return derived_tower(genotype, op_channels=256, num_cells=1)
