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


@pytest.fixture
def assert_png():
    """``assert_png(path)``: the file is a PNG that reads back, at least 100 x 100 pixels, and not one flat colour
    (a plot was drawn, not an empty canvas); returns its pixels (H, W, channels) for further checks."""
    import matplotlib.image
    import numpy as np

    def check(path, min_size: int = 100) -> "np.ndarray":
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and min(image.shape[:2]) >= min_size, (path, image.shape)
        assert len(np.unique(image[..., :3].reshape(-1, 3), axis=0)) > 2, f"{path} is blank"
        return image

    return check
