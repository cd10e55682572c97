"""Turn a FAD model config (derived mode) into its search-mode counterpart."""


def to_search_mode(model) -> None:
    """One search cell per tower with architecture weights, no genotypes (docs/METHOD.md 6, 8)."""
    model.head.search = True
    model.head.num_cells = 1
    del model.head.box_genotype
    del model.head.cls_genotype
