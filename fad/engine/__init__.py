"""The search and training engine: SearchTrainer, hooks, checkpointing, script plumbing."""

from .checkpoint import AtomicCheckpointer
from .hooks import GenotypeWriter, alpha_checksum
from .search_trainer import SearchOptions, SearchTrainer

__all__ = [
    "AtomicCheckpointer",
    "GenotypeWriter",
    "SearchOptions",
    "SearchTrainer",
    "alpha_checksum",
]
