"""Imported first by the entry points (search_net.py, train_net.py, export_model.py): silences the
deprecation warnings that detectron2's imports raise in its dependencies, which a user can do
nothing about and which would otherwise stand around every error line (standard library only).

Only these, matched by category, module and message; any other warning still shows:

- ``torch.jit.script`` is deprecated (a FutureWarning, twice): fvcore's ``focal_loss`` scripts two
  functions when detectron2.engine imports ``fvcore.nn``.
- ``pkg_resources`` is deprecated (a UserWarning from setuptools): detectron2's model zoo imports
  it, when a config loads ``detectron2.model_zoo``.
"""

import warnings

# (category, module that the warning is attributed to, start of its message), as regexes.
_FILTERS = [
    (FutureWarning, r"torch\.jit\._script", r"`torch\.jit\.script` is deprecated"),
    (UserWarning, r"detectron2\.", r"pkg_resources is deprecated as an API"),
]

for _category, _module, _message in _FILTERS:
    warnings.filterwarnings("ignore", message=_message, category=_category, module=_module)
