"""The FAD NAS core: plain PyTorch, independent of detectron2.

- :mod:`fad.nas.ops`: the candidate ops, built alone (derived mode);
- :mod:`fad.nas.mixed_op`: the representation-sharing mixed op (and the plain DARTS one), whose
  forward runs several edges' mixed ops stacked as grouped convs (fewer kernels);
- :mod:`fad.nas.search_cells`: search cell (its edges by groups) and search tower, which owns the
  architecture weights, and the split of a model's parameters into alphas and weights;
- :mod:`fad.nas.derived_cells`: derived cell and tower built from a genotype;
- :mod:`fad.nas.architect`: first- and second-order alpha gradients of the bilevel problem;
- :mod:`fad.nas.visualize`: graphviz plots of a genotype's cell; matplotlib plots of the alphas
  over a search.

The op vocabulary and the genotype API are :mod:`fad.genotypes`, which these modules import (and
which imports none of them).
"""
