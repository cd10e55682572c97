"""Imported first by the entry points (search_net.py, train_net.py, export_model.py): silences the
deprecation warnings detectron2's imports raise in its dependencies, which a user can do nothing
about (standard library only). Only these, by category, module and message:

- ``torch.jit.script`` is deprecated (FutureWarning): fvcore's ``focal_loss`` (detectron2.engine).
- ``pkg_resources`` is deprecated (UserWarning, setuptools): detectron2's model zoo.
"""

import warnings

warnings.filterwarnings(
    "ignore", r"`torch\.jit\.script` is deprecated", FutureWarning, r"torch\.jit\._script"
)
warnings.filterwarnings(
    "ignore", r"pkg_resources is deprecated as an API", UserWarning, r"detectron2\."
)
