"""The order in which an epoch visits the rows: a full permutation, or a block shuffle.

A full random permutation (``shuffle="rows"``) is the default for data held in
memory. For a memory-mapped data set larger than the page cache it turns every
row into a random read of a few hundred bytes from disk. The block shuffle
(``shuffle="blocks"``, the default for memory-mapped X) keeps reads
sequential enough to run from disk:

1. the rows are cut into blocks of `BLOCK_BYTES` (1 MiB: 1,337 rows of 784
   uint8 pixels), which are visited in a random order;
2. the rows of each window of `WINDOW_BLOCKS` consecutive blocks of that order
   (64 MiB) are then permuted among themselves.

An epoch thus reads every 1 MiB block once, as a whole, with at most 64 MiB
of it in use at a time, and each batch draws its rows from up to 64 blocks
scattered over the file. Both orders are drawn from the estimator's RNG alone,
so a checkpoint (which holds the RNG state) resumes them exactly, and the
ranks of a data-parallel run draw the same order.
"""

import numpy as np

SCHEMES = ("rows", "blocks")
BLOCK_BYTES = 1 << 20
WINDOW_BLOCKS = 64


def resolve(shuffle, memory_mapped):
    """The scheme of the estimator parameter `shuffle`: None (keep the file's order),
    "rows" or "blocks"; True means "blocks" for memory-mapped X, else "rows"."""
    if shuffle is True:
        return "blocks" if memory_mapped else "rows"
    return shuffle or None


def epoch_order(rng, n, scheme, row_bytes):
    """An order of rows 0..n-1 (intp) by `scheme` ("rows" or "blocks"), drawn from `rng`.

    Parameters
    ----------
    rng : numpy.random.RandomState
    n : int
    scheme : {"rows", "blocks"}
    row_bytes : int
        Bytes per row of X, which set the rows per block.
    """
    if scheme == "rows":
        return rng.permutation(n)
    block = max(1, BLOCK_BYTES // max(1, row_bytes))
    blocks = rng.permutation(-(-n // block))
    rows_in = np.minimum(block, n - blocks * block)  # the file's last block is short
    ends = np.cumsum(rows_in)
    # filled block by block: no temporary of the order's size (80 MB for 10M rows)
    order = np.empty(n, np.intp)
    for first, end, size in zip((blocks * block).tolist(), ends.tolist(), rows_in.tolist()):
        order[end - size : end] = np.arange(first, first + size)
    # windows end at whole blocks, wherever the short one fell
    start = 0
    for end in [*ends[WINDOW_BLOCKS - 1 : -1 : WINDOW_BLOCKS].tolist(), n]:
        part = order[start:end]
        part[...] = part[rng.permutation(end - start)]
        start = end
    return order
