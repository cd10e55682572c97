"""The search and training engine: SearchTrainer, hooks, checkpointing, script plumbing."""

from .checkpoint import AtomicCheckpointer
from .hooks import GenotypeWriter, alpha_checksum
from .search_trainer import SearchTrainer, amp_precision_for, check_warmup_iters

__all__ = [
    "AtomicCheckpointer",
    "GenotypeWriter",
    "SearchTrainer",
    "alpha_checksum",
    "amp_precision_for",
    "check_warmup_iters",
]
