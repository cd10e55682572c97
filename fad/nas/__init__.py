"""The FAD NAS core: plain PyTorch, independent of detectron2.

- :mod:`fad.nas.ops`: the candidate ops (derived mode) and the search-space names;
- :mod:`fad.nas.mixed_op`: the representation-sharing mixed op (and the plain DARTS one);
- :mod:`fad.nas.search_cells`: search cell and search tower, which owns the architecture weights;
- :mod:`fad.nas.derived_cells`: derived cell and tower built from a genotype;
- :mod:`fad.nas.architect`: first- and second-order alpha gradients of the bilevel problem;
- :mod:`fad.nas.visualize`: graphviz plots of a genotype's cell.

The genotype API is :mod:`fad.genotypes`. The modules import each other directly (no re-exports
here) so that ``fad.genotypes`` and the cells can depend on each other's names without a cycle.
"""
