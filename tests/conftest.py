"""Helpers shared by the test packages (tests/nas, tests/modeling, tests/engine, tests/data)."""

import os
from pathlib import Path

import pytest
import torch

from fad.genotypes import op_layers

#: The repository root: configs, scripts and project files are found from here.
ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """Under pytest-xdist (``-n N``), each worker takes its share of the cores: N workers that
    each run a thread per core would oversubscribe them. The scripts that tests run in
    subprocesses inherit the share through OMP_NUM_THREADS (unless the user set it)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        share = max(1, (os.cpu_count() or 1) // int(workers))
        os.environ.setdefault("OMP_NUM_THREADS", str(share))
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def _op_params(name: str, c: int) -> int:
    """Parameters of a derived op, from the original code's layer definitions."""
    gn = 2 * c
    per_layer = {
        "std": 9 * c * c + c + gn,  # 3x3 conv with bias, GN
        "sinSep": 9 * c + c * c + c + gn,  # depthwise (no bias), pointwise (bias), GN
        "dil": 9 * c + c + c * c + c + gn,  # depthwise dilated (bias), pointwise (bias), GN
        "dil3": 9 * c + c + c * c + c + gn,
    }
    return sum(per_layer[k] for k in op_layers(name))


def _original_tower_params(genotype, *, c_node: int, c: int, num_cells: int) -> int:
    """Parameter count of the original FAD AugmentRCNN tower for ``genotype``.

    Each edge is Sequential(1x1 conv C_node->C with bias, op, 1x1 conv C->C_node with bias);
    a cell whose input has 3 * C_node channels pre-processes it with StdConv 1x1 (bias, GN).
    """
    edges = sum(
        c_node * c + c + _op_params(op, c) + c * c_node + c_node
        for node in genotype.normal
        for op, _ in node
    )
    preproc = 3 * c_node * c_node + c_node + 2 * c_node
    # Cell 0 reads (feature, feature); cell k >= 1 reads a 3 * C_node-wide s1 (and s0 from k >= 2).
    preprocs = sum(min(k, 2) for k in range(num_cells))
    return num_cells * edges + preprocs * preproc


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def op_params():
    """``op_params(name, c)``: parameters of a derived op as the original code builds it."""
    return _op_params


@pytest.fixture(scope="session")
def original_tower_params():
    """``original_tower_params(genotype, c_node=, c=, num_cells=)``: parameters of the original
    code's derived tower."""
    return _original_tower_params


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """The synthetic splits of the configs, generated once for the session in a temporary root
    and registered there in this process (needs detectron2). Subprocesses find them through
    ``FAD_SYNTHETIC_ROOT``."""
    from fad.data.datasets import SYNTHETIC_SPLITS, prepare_datasets, register_synthetic_datasets

    root = tmp_path_factory.mktemp("fad_synthetic")
    register_synthetic_datasets(str(root))
    prepare_datasets(list(SYNTHETIC_SPLITS))
    return root
