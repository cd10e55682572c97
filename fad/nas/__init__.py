"""The FAD NAS core, plain PyTorch (no detectron2): candidate ops (:mod:`~fad.nas.ops`), mixed
ops (:mod:`~fad.nas.mixed_op`), search and derived cells and towers
(:mod:`~fad.nas.search_cells`, :mod:`~fad.nas.derived_cells`), alpha gradients
(:mod:`~fad.nas.architect`), selection and plots. The op vocabulary and genotypes are
:mod:`fad.genotypes`.
"""
