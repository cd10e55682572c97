"""The search and training engine: SearchTrainer, hooks, checkpointing, script plumbing."""

from .checkpoint import AtomicCheckpointer
from .hooks import GenotypeWriter, alpha_checksum
from .search_trainer import SearchTrainer

__all__ = ["AtomicCheckpointer", "GenotypeWriter", "SearchTrainer", "alpha_checksum"]
