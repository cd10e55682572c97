"""FAD-D2: representation-sharing detector head search (FAD, ECCV 2020) on detectron2.

The NAS core (:mod:`fad.nas`, :mod:`fad.genotypes`) is plain PyTorch. The detectron2 layer
(:mod:`fad.modeling`, :mod:`fad.engine`, :mod:`fad.data`) needs detectron2 installed.
"""

__version__ = "0.1.0"
