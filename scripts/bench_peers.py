#!/usr/bin/env python
"""Time one training step of fastnn against NumPy, PyTorch and JAX, side by side.

Configurations (docs/design.md section 8): a = 784-10-10 at batch 42,000 (the seed
recipe, full batch), b = 784-128-10 at 128, c = 784-256-128-10 at 256,
d = 784-1024-1024-10 at 512. A step is forward, softmax cross-entropy,
backward and a plain SGD update (lr 0.1), on synthetic data shaped like the
digits (pixels in [0, 1), 10 classes).

Each implementation lives in its own worker process, pinned to the same
`--threads` CPUs with every thread pool it knows of set to that many threads,
so that no two pools fight. The parent interleaves the workers round by round
(config by config, implementation by implementation, with an idle gap so that
spinning BLAS workers go to sleep) and reports medians over rounds. An sgemm
worker measures the machine's GEMM peak in the same run.

    python scripts/bench_peers.py --out bench-results          # a few minutes
    python scripts/bench_peers.py --quick --out /tmp/bench     # under a minute

PyTorch and JAX are optional (they are not fastnn dependencies); a missing one
is reported as such. Writes ``peers.md`` and ``peers.json`` to `--out`.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

CONFIGS = {
    "a": ((784, 10, 10), 42000),
    "b": ((784, 128, 10), 128),
    "c": ((784, 256, 128, 10), 256),
    "d": ((784, 1024, 1024, 10), 512),
}
IMPLS = ("fastnn-numba", "fastnn-numpy", "torch", "jax")
LEARNING_RATE = 0.1
SGEMM_SIZE = 2048
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def step_flops(sizes, n):
    """Floating-point operations of one step's GEMMs (element-wise work is ignored).

    Forward and dW are 2 n k m each for every layer; dx is 2 n k m for every
    layer but the first.
    """
    pairs = list(zip(sizes[:-1], sizes[1:]))
    total = sum(k * m for k, m in pairs)
    return 2 * n * (3 * total - pairs[0][0] * pairs[0][1])


# -- worker side --------------------------------------------------------------


def _data(sizes, n, dtype, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.random((n, sizes[0]), dtype=np.float64).astype(dtype)
    y = rng.integers(0, sizes[-1], n).astype(np.intp)
    coefs = [(rng.uniform(-1, 1, (k, m)) * np.sqrt(1.0 / k)).astype(dtype)
             for k, m in zip(sizes[:-1], sizes[1:])]
    intercepts = [np.zeros(m, dtype) for m in sizes[1:]]
    return X, y, coefs, intercepts


def _fastnn_step(backend, sizes, n, dtype):
    from fastnn import get_backend
    from fastnn.network import TrainStep
    from fastnn.optim import SGDOptimizer

    X, y, coefs, intercepts = _data(sizes, n, dtype)
    ops = get_backend(backend).ops
    train = TrainStep(ops, coefs, intercepts, n)
    optimizer = SGDOptimizer(train.params, ops, LEARNING_RATE, momentum=0.0)
    params, grads = train.params, train.grads

    def step():
        train.loss_and_grads(X, y, 0.0)
        optimizer.update_params(params, grads)

    return step


def _torch_step(sizes, n, dtype, threads):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    X, y, coefs, intercepts = _data(sizes, n, dtype)
    layers = []
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        linear = torch.nn.Linear(*W.shape, dtype=getattr(torch, np.dtype(dtype).name))
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if i < len(coefs) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))

    def step():
        optimizer.zero_grad(set_to_none=False)
        loss = torch.nn.functional.cross_entropy(model(Xt), yt)
        loss.backward()
        optimizer.step()

    return step


def _jax_step(sizes, n, dtype):
    import jax
    import jax.numpy as jnp
    import numpy as np

    if np.dtype(dtype) == np.float64:
        jax.config.update("jax_enable_x64", True)
    X, y, coefs, intercepts = _data(sizes, n, dtype)
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(coefs, intercepts)]
    Xj, yj = jnp.asarray(X), jnp.asarray(y.astype(np.int32))

    def loss_fn(params, x, y):
        a = x
        for W, b in params[:-1]:
            a = jax.nn.relu(a @ W + b)
        W, b = params[-1]
        logits = a @ W + b
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @jax.jit
    def train_step(params, x, y):
        grads = jax.grad(loss_fn)(params, x, y)
        return jax.tree_util.tree_map(lambda p, g: p - LEARNING_RATE * g, params, grads)

    state = {"params": params}

    def step():
        state["params"] = jax.block_until_ready(train_step(state["params"], Xj, yj))

    return step


def _sgemm_step():
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random((SGEMM_SIZE, SGEMM_SIZE), dtype=np.float32)
    b = rng.random((SGEMM_SIZE, SGEMM_SIZE), dtype=np.float32)
    out = np.empty_like(a)

    def step():
        np.matmul(a, b, out=out)

    return step


def _make_step(impl, config, dtype, threads):
    if impl == "sgemm":
        return _sgemm_step()
    sizes, n = CONFIGS[config]
    if impl.startswith("fastnn-"):
        return _fastnn_step(impl.split("-", 1)[1], sizes, n, dtype)
    if impl == "torch":
        return _torch_step(sizes, n, dtype, threads)
    if impl == "jax":
        return _jax_step(sizes, n, dtype)
    raise ValueError(impl)


def _version(impl):
    if impl.startswith("fastnn-"):
        import fastnn
        import numba
        import numpy

        return f"fastnn {fastnn.__version__}, numba {numba.__version__}, numpy {numpy.__version__}"
    if impl == "torch":
        import torch

        return f"torch {torch.__version__}"
    if impl == "jax":
        import jax

        return f"jax {jax.__version__}"
    import numpy

    return f"numpy {numpy.__version__}"


def worker(impl, dtype, threads):
    """Serve JSON-line requests on stdin: {"config", "min_time"} -> {"ms"}."""
    try:
        version = _version(impl)
    except ImportError as exc:
        print(json.dumps({"error": f"not installed ({exc.name})"}), flush=True)
        return
    print(json.dumps({"version": version}), flush=True)
    steps = {}
    for line in sys.stdin:
        request = json.loads(line)
        config = request["config"]
        if config not in steps:
            started = time.perf_counter()
            steps[config] = _make_step(impl, config, dtype, threads)
            steps[config]()  # compiles (Numba, JAX) and touches every buffer
            steps[config]()
            print(json.dumps({"setup_s": time.perf_counter() - started}), flush=True)
            continue
        step = steps[config]
        # As many steps as fill min_time, at least 3; the block's mean per step
        count, started = 0, time.perf_counter()
        while count < 3 or time.perf_counter() - started < request["min_time"]:
            step()
            count += 1
        elapsed = time.perf_counter() - started
        print(json.dumps({"ms": 1e3 * elapsed / count}), flush=True)


# -- parent side --------------------------------------------------------------


class Worker:
    def __init__(self, impl, dtype, threads):
        env = dict(os.environ)
        for name in THREAD_VARS:
            env[name] = str(threads)
        # XLA's CPU client sizes its pool from the CPUs it may run on (the affinity below)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", impl, "--dtype", dtype,
             "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
            preexec_fn=lambda: _pin(threads),
        )
        hello = self._read()
        self.version = hello.get("version")
        self.error = hello.get("error")

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("worker exited; see its stderr above")
        return json.loads(line)

    def ask(self, config, min_time):
        self.proc.stdin.write(json.dumps({"config": config, "min_time": min_time}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _pin(threads):
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cpus)


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run(args):
    impls = [i for i in args.impls.split(",") if i]
    configs = [c for c in args.configs.split(",") if c]
    load_before = os.getloadavg()[0]
    workers, skipped = {}, {}
    for impl in ["sgemm", *impls]:
        w = Worker(impl, args.dtype, args.threads)
        if w.error:
            skipped[impl] = w.error
            w.close()
        else:
            workers[impl] = w
    samples = {(impl, c): [] for impl in workers for c in configs}
    samples.update({("sgemm", "-"): []})
    setup = {}
    try:
        for impl, w in workers.items():
            for c in (["-"] if impl == "sgemm" else configs):
                setup[f"{impl}/{c}"] = w.ask(c, 0)["setup_s"]
                time.sleep(args.gap)
        for round_ in range(args.rounds):
            # Rotate the order each round so no implementation always runs first
            order = list(workers)[round_ % len(workers):] + list(workers)[: round_ % len(workers)]
            for c in configs:
                for impl in order:
                    config = "-" if impl == "sgemm" else c
                    if impl == "sgemm" and c != configs[0]:
                        continue
                    samples[(impl, config)].append(workers[impl].ask(config, args.min_time)["ms"])
                    time.sleep(args.gap)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for w in workers.values():
            w.close()

    sgemm_ms = statistics.median(samples[("sgemm", "-")])
    peak = 2 * SGEMM_SIZE**3 / (sgemm_ms * 1e-3) / 1e9
    rows = []
    for c in configs:
        sizes, n = CONFIGS[c]
        flops = step_flops(sizes, n)
        for impl in impls:
            if impl not in workers:
                continue
            ms = statistics.median(samples[(impl, c)])
            gflops = flops / (ms * 1e-3) / 1e9
            rows.append({
                "config": c, "network": "-".join(map(str, sizes)), "batch": n, "impl": impl,
                "ms_per_step": ms, "samples": samples[(impl, c)],
                "samples_per_s": n / (ms * 1e-3), "gflops": gflops,
                "pct_sgemm_peak": 100 * gflops / peak,
            })
    by = {(r["config"], r["impl"]): r["ms_per_step"] for r in rows}
    ratios = {}
    for c in configs:
        mine = by.get((c, "fastnn-numba"))
        for peer in ("fastnn-numpy", "torch", "jax"):
            if mine and (c, peer) in by:
                ratios[f"{c}/{peer}"] = by[(c, peer)] / mine
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": _cpu_name(), "cpus": os.cpu_count(), "python": platform.python_version()},
        # other processes on these cores slow 2-thread BLAS calls the most
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "openblas_coretype": coretype if coretype is not None else "unset",
        "threads": args.threads, "dtype": args.dtype, "rounds": args.rounds,
        "min_time_s": args.min_time,
        "versions": {impl: w.version for impl, w in workers.items()},
        "skipped": skipped,
        "sgemm": {"size": SGEMM_SIZE, "ms": sgemm_ms, "gflops": peak},
        "setup_s": setup,
        "results": rows,
        "speedup_of_fastnn_numba": ratios,
    }


def markdown(report):
    lines = [
        f"Machine: {report['machine']['cpu']} ({report['machine']['cpus']} CPUs), "
        f"{report['threads']} threads, {report['dtype']}, "
        f"OPENBLAS_CORETYPE={report['openblas_coretype']}, {report['date']}. "
        f"Medians of {report['rounds']} interleaved rounds; 1-minute load average "
        f"{report['load_average_1min']['before']:.2f} before, "
        f"{report['load_average_1min']['after']:.2f} after.",
        f"sgemm peak (NumPy, {report['sgemm']['size']}^3, same run): "
        f"{report['sgemm']['gflops']:.0f} GFLOP/s.",
        "",
        "| config | implementation | ms/step | samples/s | GFLOP/s | % of sgemm peak |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['config']} ({r['network']}, batch {r['batch']}) | {r['impl']} | "
            f"{r['ms_per_step']:.3f} | {r['samples_per_s']:,.0f} | {r['gflops']:.1f} | "
            f"{r['pct_sgemm_peak']:.0f} % |"
        )
    lines += ["", "Speed-up of fastnn-numba (peer's time / fastnn-numba's time):", "",
              "| config | vs fastnn-numpy | vs torch | vs jax |", "| --- | ---: | ---: | ---: |"]
    ratios = report["speedup_of_fastnn_numba"]
    for c in dict.fromkeys(r["config"] for r in report["results"]):
        cells = [f"{ratios[f'{c}/{p}']:.2f}x" if f"{c}/{p}" in ratios else "-"
                 for p in ("fastnn-numpy", "torch", "jax")]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    if report["skipped"]:
        lines += ["", "Skipped: " + ", ".join(f"{k} ({v})" for k, v in report["skipped"].items())]
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="a,b,c,d")
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.25,
                        help="seconds of steps per sample")
    parser.add_argument("--gap", type=float, default=0.2,
                        help="idle seconds between samples, so spinning thread pools sleep")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 0.1 s samples")
    parser.add_argument("--out", help="directory for peers.md and peers.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.dtype, args.threads)
        return 0
    if args.quick:
        args.rounds, args.min_time = 3, 0.1
    report = run(args)
    text = markdown(report)
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "peers.md"), "w") as f:
            f.write(text)
        with open(os.path.join(args.out, "peers.json"), "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
