"""Test setup for the attention package.

* The attention tests run many small tensor operations; with several intra-op threads on a busy
  machine each one can stall for milliseconds waiting on a descheduled thread, so they run on one
  thread (restored afterwards). Results do not depend on the thread count.
* Without a CUDA device the Triton kernels are tested under Triton's interpreter, which must be
  switched on (``TRITON_INTERPRET=1``) before ``triton`` is first imported: ``@triton.jit`` decides
  at decoration time, for ``triton.language`` itself too. Without a GPU nothing can be compiled by
  Triton anyway, so the variable changes nothing else.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

if "triton" not in sys.modules and not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _one_intra_op_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
