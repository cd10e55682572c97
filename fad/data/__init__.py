"""Datasets for FAD: the synthetic shapes generator and detectron2 dataset registration.

:mod:`fad.data.synthetic` is pure (numpy + Pillow) and importable without detectron2. The
registration API of :mod:`fad.data.datasets` needs detectron2; it is imported (registering the
synthetic splits, and detectron2's builtin COCO / VOC splits) and re-exported here only when
detectron2 is installed, so the pure generator stays usable without it. The check is on whether
detectron2 is installed, not on whether importing it fails, so that errors in our own code or in
a broken detectron2 installation are never hidden.
"""

import importlib.util

from .synthetic import SYNTHETIC_CLASSES, generate_synthetic_coco, render_synthetic_image

__all__ = ["SYNTHETIC_CLASSES", "generate_synthetic_coco", "render_synthetic_image"]

if importlib.util.find_spec("detectron2") is not None:
    from . import datasets
    from .datasets import *  # noqa: F403  (the registration API: datasets.__all__)

    __all__ += datasets.__all__
