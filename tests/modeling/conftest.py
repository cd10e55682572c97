"""Fixtures of the model tests."""

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Run each module's small convolutions on one thread, then restore the setting.

    On a busy 2-core machine, two intra-op threads per process spin against other processes:
    the R-18 search training tests took 65-190 s with two threads and 15-20 s with one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
