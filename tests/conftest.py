"""Shared test set-up."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_intra_op_thread():
    """One intra-op thread: the suite's tensors are tiny, and on a 2-core CI machine two OpenMP threads
    spin against each other and against pytest (measured: small per-step ops up to 100x slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
