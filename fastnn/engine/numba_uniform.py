"""scikit-learn's initial weights drawn in compiled code, bit for bit.

scikit-learn draws every weight with ``RandomState.uniform`` (MT19937), one
float64 per weight, then fastnn casts it into its buffer: 26 ms for the
50,000 x 128 first layer of a wide sparse X (15 % of its one-epoch fit).
`uniform_into` runs the same generator in Numba, writing straight into the
buffer in its dtype: the same numbers, the same state left in the RNG, about
three times faster. Small draws stay with NumPy (a compiled call is not worth
its first-use cost there).
"""

import numba
import numpy as np

from fastnn.contract.jit import njit

# weights below this many stay with NumPy's uniform
COMPILED_MIN = 1 << 18

_N, _M = 624, 397  # MT19937's state words and twist offset
_UPPER, _LOWER, _MATRIX = np.uint32(0x80000000), np.uint32(0x7FFFFFFF), np.uint32(0x9908B0DF)


@njit(cache=True, nogil=True, boundscheck=False)
def _twist(key):
    """The next 624 words of MT19937's state, in place."""
    one = np.uint32(1)
    for k in range(_N - _M):
        y = (key[k] & _UPPER) | (key[k + 1] & _LOWER)
        key[k] = key[k + _M] ^ (y >> one) ^ (_MATRIX * (y & one))
    for k in range(_N - _M, _N - 1):
        y = (key[k] & _UPPER) | (key[k + 1] & _LOWER)
        key[k] = key[k + _M - _N] ^ (y >> one) ^ (_MATRIX * (y & one))
    y = (key[_N - 1] & _UPPER) | (key[0] & _LOWER)
    key[_N - 1] = key[_M - 1] ^ (y >> one) ^ (_MATRIX * (y & one))


@njit(cache=True, nogil=True, boundscheck=False)
def legacy_uniform(key, pos, low, span, out):
    """out[i] = low + span * (NumPy's MT19937 double i), from state (key, pos).

    As ``RandomState.uniform(low, low + span)``: each double takes two
    tempered words, (a >> 5) * 2**26 + (b >> 6) over 2**53. Twists `key` in
    place and returns the new position; `out` is flat, float32 or float64
    (each double rounded once, on the store).
    """
    words = np.empty(_N + 1, np.uint32)  # a block's tempered words, after one left over
    left = 0  # a word of the last block not yet used (its double's first half)
    n = out.shape[0]
    i = 0
    while i < n:
        if pos >= _N:
            _twist(key)
            pos = 0
        need = min(_N - pos, 2 * (n - i) - left)
        for j in range(need):
            y = key[pos + j]
            y ^= y >> np.uint32(11)
            y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
            y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
            y ^= y >> np.uint32(18)
            words[left + j] = y
        pos += need
        have = left + need
        pairs = have // 2
        for j in range(pairs):
            a = np.int64(words[2 * j] >> np.uint32(5))
            b = np.int64(words[2 * j + 1] >> np.uint32(6))
            out[i + j] = low + span * ((a * 67108864.0 + b) / 9007199254740992.0)
        i += pairs
        left = have - 2 * pairs
        if left:
            words[0] = words[have - 1]
    return pos


def uniform_into(rng, low, high, out):
    """``out[...] = rng.uniform(low, high, out.shape)``, and `rng` advanced as that call would.

    Compiled for a C-contiguous `out` of at least `COMPILED_MIN` elements
    from an MT19937 RandomState (every RandomState scikit-learn's
    `check_random_state` makes); NumPy otherwise, and under NUMBA_DISABLE_JIT.
    """
    low, high = float(low), float(high)
    span = high - low
    state = None
    compiled = out.size >= COMPILED_MIN and not numba.config.DISABLE_JIT
    if compiled and out.flags.c_contiguous and np.isfinite(span):
        state = rng.get_state(legacy=False)
    if state is None or state["bit_generator"] != "MT19937":
        out[...] = rng.uniform(low, high, out.shape)
        return
    key = np.array(state["state"]["key"], np.uint32)
    pos = legacy_uniform(key, int(state["state"]["pos"]), low, span, out.reshape(-1))
    rng.set_state({**state, "state": {"key": key, "pos": pos}})
