"""The FAD NAS core, plain PyTorch (no detectron2); the op vocabulary is :mod:`fad.genotypes`."""
