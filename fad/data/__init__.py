"""The synthetic shapes generator (pure numpy + Pillow) and, where detectron2 is installed, the
dataset registration API of :mod:`fad.data.datasets`. The test is whether detectron2 is installed,
not whether importing it fails, so that errors in our code or a broken detectron2 are not hidden.
"""

import importlib.util

from .synthetic import SYNTHETIC_CLASSES, generate_synthetic_coco, render_synthetic_image

__all__ = ["SYNTHETIC_CLASSES", "generate_synthetic_coco", "render_synthetic_image"]

if importlib.util.find_spec("detectron2") is not None:
    from . import datasets
    from .datasets import *  # noqa: F403  (the registration API: datasets.__all__)

    __all__ += datasets.__all__
