"""Dropout while training (issue 20): the steps' gradients with a fixed mask, the
masks the steps draw, both backends and every path in agreement, reproducible
and resumable runs, and predictions without dropout.

The masks are the contract's counter-based hash of (seed + layer, step, row's
index in X, unit) (`tests/contract/test_dropout.py` tests the hash itself).
"""

import itertools
import pickle

import numpy as np
import pytest
from scipy import sparse

import fastnn
from fastnn import MLPClassifier, MLPRegressor
from fastnn.contract.tables import ACTIVATIONS, HEADS
from fastnn.engine import epoch_loop
from fastnn.engine.step import TrainStep
from tests.helpers import close, head_targets, small_network

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RATES = (0.3, 0.5)
SIZES = [5, 6, 4, 3]
IDS = np.array([11, 3, 40, 7, 0, 25, 9, 13, 2], np.int64)  # rows' indices in X


def _step(backend, activation, head, dtype=np.float64, rates=RATES, seed=12345):
    rng = np.random.default_rng(7)
    coefs, intercepts = small_network(rng, SIZES, dtype)
    x = rng.standard_normal((len(IDS), SIZES[0])).astype(dtype)
    targets = head_targets(head, rng, len(IDS), SIZES[-1], dtype)
    step = TrainStep(
        backend, coefs, intercepts, len(IDS), activation, head, dropout=rates, dropout_seed=seed
    )
    labels, Y = (targets, None) if head == "softmax" else (None, targets)

    def loss():
        value, _ = step.batch_grads(x, labels, Y, ids=IDS, step=4)
        return value

    return step, loss


def _numeric_gradient(step, loss, eps=1e-6):
    numeric = []
    for param in step.params:
        g = np.empty_like(param)
        for idx in np.ndindex(param.shape):
            saved = param[idx]
            param[idx] = saved + eps
            up = loss()
            param[idx] = saved - eps
            down = loss()
            param[idx] = saved
            g[idx] = (up - down) / (2 * eps)
        numeric.append(g)
    return numeric


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("activation,head", list(itertools.product(ACTIVATIONS, HEADS)))
def test_gradients_with_a_fixed_mask_match_finite_differences(backend, activation, head):
    # the same (seed, step, ids) give the same masks at every evaluation, so the
    # loss is a fixed function of the weights; float64 central differences
    step, loss = _step(backend, activation, head)
    loss()
    analytic = [g.copy() for g in step.grads]
    for grad, numeric in zip(analytic, _numeric_gradient(step, loss)):
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    # the masks drop some units of the first layer and keep others: a real check
    if backend == "numba":
        dropped = step.masks.dropped[0][: len(IDS)]
        assert 0 < np.count_nonzero(dropped) < dropped.size


@pytest.mark.parametrize("activation,head", list(itertools.product(ACTIVATIONS, HEADS)))
def test_backends_and_dtypes_take_the_same_masks(activation, head):
    # Numba against NumPy in float64 and float32; float32 against float64 (the
    # masks do not depend on the dtype, the scale 1/(1-rate) is rounded to it)
    grads = {}
    for backend, dtype in itertools.product(["numpy", "numba"], [np.float64, np.float32]):
        step, loss = _step(backend, activation, head, dtype)
        grads[backend, dtype] = (loss(), [g.copy() for g in step.grads])
    for dtype in (np.float64, np.float32):
        (l_np, g_np), (l_nb, g_nb) = grads["numpy", dtype], grads["numba", dtype]
        assert l_nb == pytest.approx(l_np, rel=float(80 * np.finfo(dtype).eps))
        for a, b in zip(g_nb, g_np):
            close(a, b, dtype, scale=max(1.0, np.abs(b).max()), terms=10)
    for a, b in zip(grads["numba", np.float32][1], grads["numba", np.float64][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _unit_outputs(backend, rates, ids, step=3, n_in=4, widths=(600, 300), seed=99):
    """Hidden outputs as the next layer reads them, with every unit's output 1
    (zero weights, bias 1, identity activation): the mask times the scale."""
    sizes = [n_in, *widths, 2]
    coefs = [np.zeros((a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    intercepts = [np.ones(b) for b in sizes[1:]]
    s = TrainStep(
        backend,
        coefs,
        intercepts,
        len(ids),
        "identity",
        "identity",
        dropout=rates,
        dropout_seed=seed,
    )
    x = np.zeros((len(ids), n_in))
    s.batch_grads(x, Y=np.zeros((len(ids), 2)), ids=ids, step=step)
    return [d[: len(ids)].copy() for d in s.masks.dropped]


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_the_steps_masks_have_the_right_statistics(rate):
    n = 400
    ids = np.arange(1000, 1000 + n)
    first, second = _unit_outputs("numba", (rate, rate), ids)
    for out in (first, second):
        kept = np.count_nonzero(out)
        expected = (1 - rate) * out.size
        sigma = np.sqrt(out.size * rate * (1 - rate))
        assert abs(kept - expected) < 6 * sigma  # binomial bounds, 2 in 10^9 by chance
        # inverted dropout: the expected activation (1) is unchanged
        assert abs(out.mean() - 1.0) < 6 * sigma / expected
        # every row draws its own mask: rows agree where two independent coins agree
        rows_agree = np.mean((out[:-1] > 0) == (out[1:] > 0))
        agree = rate**2 + (1 - rate) ** 2
        assert abs(rows_agree - agree) < 6 * np.sqrt(agree * (1 - agree) / out[1:].size)
    # the two layers' masks are not the same coins (their seeds differ)
    both = np.mean((first[:, :300] > 0) == (second > 0))
    assert abs(both - (rate**2 + (1 - rate) ** 2)) < 0.02


def test_a_rows_mask_follows_its_index_in_X_not_its_place_in_the_batch():
    # (the NumPy step's masks are compared with these through the gradients above)
    ids = np.arange(50, 90)
    perm = np.random.default_rng(0).permutation(len(ids))

    def outputs(ids, step=3):
        return _unit_outputs("numba", (0.5, 0.5), ids, step=step, widths=(64, 32))

    base = outputs(ids)
    moved = outputs(ids[perm])
    halves = [outputs(part) for part in (ids[:7], ids[7:])]  # split over ranks or threads
    for layer in range(2):
        np.testing.assert_array_equal(moved[layer], base[layer][perm])
        np.testing.assert_array_equal(np.vstack([h[layer] for h in halves]), base[layer])
    assert not np.array_equal(outputs(ids, step=4)[0], base[0])  # a new step, new masks


def test_a_batch_split_in_two_gives_the_whole_batchs_gradient():
    # MPI ranks: each computes its slice (its rows' ids) with the whole batch's scale
    rng = np.random.default_rng(3)
    coefs, intercepts = small_network(rng, SIZES)
    x = rng.standard_normal((len(IDS), SIZES[0]))
    y = rng.integers(0, 3, len(IDS))
    step = TrainStep("numba", coefs, intercepts, len(IDS), "tanh", dropout=RATES, dropout_seed=5)
    step.batch_grads(x, y, ids=IDS, step=2)
    whole = [g.copy() for g in step.grads]
    total = [np.zeros_like(g) for g in whole]
    for part in (slice(0, 4), slice(4, None)):
        step.batch_grads(x[part], y[part], scale=1 / len(IDS), ids=IDS[part], step=2)
        for t, g in zip(total, step.grads):
            t += g
    for t, w in zip(total, whole):
        close(t, w, np.float64, scale=np.abs(w).max(), terms=len(IDS))


# -- the estimators ------------------------------------------------------------

BACKENDS = ("numba", "numpy")


def data(n=300, k=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, k))
    y = (X[:, :3].sum(axis=1) * 3).astype(int) % 4
    return X, y


def fit(backend="numba", dtype="float64", X=None, y=None, **params):
    if X is None:
        X, y = data()
    params = {
        "hidden_layer_sizes": (24, 12),
        "batch_size": 32,
        "max_iter": 3,
        "random_state": 0,
        "dropout": RATES,
        **params,
    }
    return MLPClassifier(backend=backend, dtype=dtype, **params).fit(X, y)


def weights(model):
    return model.coefs_ + model.intercepts_


def assert_same(a, b, rtol=0.0, atol=0.0):
    for got, want in zip(weights(a), weights(b)):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=rtol)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_numpy_and_numba_train_the_same_weights(solver, dtype):
    # the compiled epoch (Numba) against the NumPy reference; tolerances as
    # tests/engine/test_epoch.py's: summation order only
    compiled = fit("numba", dtype, solver=solver)
    reference = fit("numpy", dtype, solver=solver)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    assert_same(compiled, reference, tol, tol)
    assert not np.allclose(
        compiled.coefs_[0], fit("numba", dtype, solver=solver, dropout=0.0).coefs_[0]
    )


def test_the_compiled_epoch_equals_the_per_batch_loop(monkeypatch):
    # the Python loop over batches (MPI, sparse X) keys masks as the compiled loop does
    compiled = fit(shuffle=True)
    init = epoch_loop.EpochRunner.__init__
    monkeypatch.setattr(
        epoch_loop.EpochRunner,
        "__init__",
        lambda self, *a, **k: init(self, *a, **{**k, "compiled": False}),
    )
    stepwise = fit(shuffle=True)
    assert_same(compiled, stepwise)  # the same kernels in the same order


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_sparse_X_draws_the_dense_rows_masks(backend):
    X, y = data()
    X[X < 0.6] = 0
    dense = fit(backend, X=X, y=y)
    csr = fit(backend, X=sparse.csr_matrix(X), y=y)
    assert_same(dense, csr, 1e-10, 1e-10)


def test_the_single_pass_network_falls_back_to_the_gemm_path():
    # one ReLU layer of 10 units, softmax head: the single pass without dropout
    X, y = data()
    params = dict(hidden_layer_sizes=(10,), dropout=0.4)
    numba = fit(X=X, y=y, **params)
    numpy = fit("numpy", X=X, y=y, **params)
    assert_same(numba, numpy, 1e-10, 1e-10)
    step = TrainStep("numba", numba.coefs_, numba.intercepts_, 32, dropout=(0.4,))
    assert step.narrow is None
    assert TrainStep("numba", numba.coefs_, numba.intercepts_, 32).narrow is not None


@pytest.mark.parametrize("uint8", [False, True])
def test_early_stopping_and_partial_fit_keep_the_backends_together(uint8):
    # early stopping's training rows keep their indices in X as mask keys;
    # partial_fit continues the counter on both backends alike
    X, y = data()
    if uint8:  # bytes read on the fly: the same masks as their float copy
        X = np.round(X * 255).astype(np.uint8)
    params = dict(early_stopping=True, validation_fraction=0.2, input_scale=1 / 255)
    numba, numpy = (fit(b, X=X, y=y, **params) for b in BACKENDS)
    assert_same(numba, numpy, 1e-10, 1e-10)
    if uint8:
        floats = fit(X=(X / 255).astype(np.float64), y=y, **{**params, "input_scale": 1.0})
        assert_same(numba, floats, 1e-10, 1e-10)
    numba, numpy = (fit(b, X=X, y=y, input_scale=1 / 255).partial_fit(X, y) for b in BACKENDS)
    assert_same(numba, numpy, 1e-10, 1e-10)


def test_the_same_random_state_gives_bit_identical_weights():
    assert_same(fit(), fit())
    assert not np.array_equal(fit().coefs_[0], fit(random_state=1).coefs_[0])
    # random_state=None: a seed of its own each time
    assert not np.array_equal(fit(random_state=None).coefs_[0], fit(random_state=None).coefs_[0])


def test_dropout_zero_trains_todays_weights():
    X, y = data()
    ref = MLPClassifier((24, 12), batch_size=32, max_iter=3, random_state=0).fit(X, y)
    for zero in (0.0, 0, [0.0, 0.0]):
        assert_same(fit(X=X, y=y, dropout=zero), ref)
    # a layer at 0 is not dropped: its rate only changes the other's masks' rate
    assert not np.array_equal(fit(dropout=[0.0, 0.5]).coefs_[0], ref.coefs_[0])


def test_a_fit_without_dropout_compiles_no_dropout_code_and_nothing_twice():
    import subprocess
    import sys

    # a fresh process: the compiled epoch, then the step and the forward pass
    # from Python (the per-batch loop, L-BFGS, predict) reuse what it compiled
    code = (
        "import numpy as np, fastnn\n"
        "from fastnn.engine import numba_step\n"
        "from fastnn.engine.step import TrainStep\n"
        "X = np.random.default_rng(0).random((50, 4)); y = np.arange(50) % 3\n"
        "m = fastnn.MLPClassifier((8, 8), max_iter=2).fit(X, y)\n"
        "m.predict(X)\n"
        "TrainStep('numba', m.coefs_, m.intercepts_, 50).batch_grads(X, y)\n"
        "used = [f for s in numba_step.DROPOUT_STEPS for f in s if f.overloads]\n"
        "used += [f for f in numba_step.DROPOUT_FORWARDS if f.overloads]\n"
        "assert not used, used\n"
        "twice = [f for f in (numba_step.FORWARDS.relu, numba_step.STEPS.relu.softmax)\n"
        "         if len(f.overloads) != 1]\n"
        "assert not twice, [f.signatures for f in twice]\n"
    )
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_resume_after_a_checkpoint_equals_an_uninterrupted_run(backend, tmp_path):
    X, y = data()
    whole = fit(backend, X=X, y=y, max_iter=4)
    first = fit(backend, X=X, y=y, max_iter=2)
    assert first._dropout_step == 2 * 10  # 10 batches an epoch
    first.save(tmp_path / "m.npz")
    for model in (fastnn.load(tmp_path / "m.npz"), pickle.loads(pickle.dumps(first))):
        assert model.dropout == list(RATES) or model.dropout == RATES
        model.set_params(max_iter=4).fit(X, y, resume=True)
        assert_same(model, whole)


def test_warm_start_and_partial_fit_continue_the_counter():
    X, y = data()
    model = fit(X=X, y=y, max_iter=2)
    seed, counted = model._dropout_seed, model._dropout_step
    model.set_params(warm_start=True).fit(X, y)
    assert model._dropout_seed == seed and model._dropout_step == counted + 20
    model.partial_fit(X, y)
    assert model._dropout_step == counted + 30
    # a fresh fit starts over: a new run, the seed drawn again from random_state
    again = fit(X=X, y=y, max_iter=2)
    assert again._dropout_seed == seed and again._dropout_step == counted


def test_interrupted_epoch_rolls_the_counter_back():
    X, y = data()
    model = fit(X=X, y=y, max_iter=2)
    state = model.get_training_state()
    assert (state.dropout_seed, state.dropout_step) == (model._dropout_seed, 20)
    model._dropout_step = 999
    model.set_training_state(state)
    assert model._dropout_step == 20


def test_predictions_use_every_unit():
    X, y = data()
    model = fit(X=X, y=y)
    proba = model.predict_proba(X)
    # the network as it is, no mask, no scale
    a = X
    for W, b in zip(model.coefs_[:-1], model.intercepts_[:-1]):
        a = np.maximum(a @ W + b, 0)
    logits = a @ model.coefs_[-1] + model.intercepts_[-1]
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(proba, expected / expected.sum(1, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(model.set_params(dropout=0.9).predict_proba(X), proba)


def test_the_regressor_takes_dropout():
    X, _ = data()
    y = X[:, 0] * 2 - X[:, 1]
    fits = [
        MLPRegressor((16,), dropout=0.2, max_iter=3, random_state=0, backend=b).fit(X, y)
        for b in ("numba", "numpy")
    ]
    assert_same(*fits, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "value", [1.0, -0.1, float("nan"), "0.5", True, [0.5], [0.5, 0.2, 0.1], [0.5, 1.5], None]
)
def test_bad_rates_are_refused_naming_dropout(value):
    X, y = data()
    with pytest.raises(ValueError, match="dropout"):
        MLPClassifier((4, 4), dropout=value, max_iter=1).fit(X, y)


def test_lbfgs_refuses_dropout():
    X, y = data()
    with pytest.raises(ValueError, match="dropout needs solver='sgd' or 'adam'"):
        MLPClassifier((4,), solver="lbfgs", dropout=0.5).fit(X, y)
    MLPClassifier((4,), solver="lbfgs", dropout=0.0, max_iter=2).fit(X, y)


def test_old_pickles_and_files_get_no_dropout():
    from tests.helpers import REPO

    fixtures = REPO / "tests" / "fixtures"
    model = fastnn.load(fixtures / "v3_adam_multiclass_float32.npz")
    assert model.dropout == 0.0 and model._dropout_step == 0
    with open(fixtures / "v3_adam_multiclass_float32.pkl", "rb") as f:
        old = pickle.load(f)
    assert old.dropout == 0.0 and old._dropout_seed is None


def test_save_keeps_the_rates_of_any_real_type(tmp_path):
    X, y = data()
    for rates in (np.float32(0.25), (np.float64(0.5), 0)):
        model = fit(X=X, y=y, dropout=rates, max_iter=1)
        model.save(tmp_path / "m.npz")
        loaded = fastnn.load(tmp_path / "m.npz")
        assert np.array_equal(np.atleast_1d(loaded.dropout), np.atleast_1d(rates))
        assert loaded._dropout_seed == model._dropout_seed
        assert loaded._dropout_step == model._dropout_step == 10
