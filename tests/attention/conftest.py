"""The attention tests run many small tensor operations; with several intra-op threads on a busy
machine each one can stall for milliseconds waiting on a descheduled thread, so they run on one
thread (restored afterwards). Results do not depend on the thread count."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_intra_op_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
