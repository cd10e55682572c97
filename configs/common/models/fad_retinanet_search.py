"""RetinaNet R-50 FPN with the FAD head in search mode: one search cell per tower (model only)."""

from .fad_retinanet import model
from .search_mode import to_search_mode

to_search_mode(model)
