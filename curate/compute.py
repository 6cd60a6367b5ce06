"""How numeric work is run: small products with one BLAS thread.

scikit-learn's lbfgs fits on a few thousand rows, and per-item features (a 40 x 257 filterbank times a
spectrogram), make thousands of small matrix products; OpenBLAS then spends more time waking and spinning its
threads than computing. On a busy 2-core machine the 4,000-image baseline took 55 s with the default threads and
7 s with one; one mel spectrogram 9.6 ms and 1.6 ms. Large products (the similarity blocks) keep their threads.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread inside the block (threadpoolctl ships with scikit-learn)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
