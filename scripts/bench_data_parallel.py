"""Measure what the data-parallel scaling model of docs/distributed.md needs.

Three measurements, each in its own processes, written to one JSON file:

- ``allreduce``: in-place MPI_Allreduce (sum, float32) on 2 local ranks for
  buffers of 1 KB to 16 MB (and 64 MB), the mean of many calls (the fastest
  of several such rounds), and the
  least-squares fit ``t = alpha + bytes * beta`` (relative errors);
- ``steps``: ms per training step of configs b, c, d (docs/design.md section 8:
  forward, softmax cross-entropy, backward, plain SGD at learning rate 0.1,
  float32, Numba) as 1 rank x 2 threads (the single-process compiled epoch),
  1 rank x 1 thread (compiled epoch, and the Python loop over batches that
  data-parallel epochs run), and 2 ranks x 1 thread (`fastnn.distributed`,
  one Allreduce per step);
- ``curve``: on one process at 2 threads, ms of one slice's gradients for
  batch slices of B, B/2, ..., B/64 rows and of one optimizer update, for
  configs b, c, d and w (784-4096-4096-10, batch 512): the compute term of
  the model, as one node computes it.

    python scripts/bench_data_parallel.py --out results/dp.json

Every figure is the fastest of several rounds: on a shared machine other work
only ever adds time. Run it on an otherwise idle machine all the same.
`scripts/scaling_model.py` turns the JSON into the tables of
docs/distributed.md.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

CONFIGS = {  # name: (layer sizes, batch)
    "b": ((784, 128, 10), 128),
    "c": ((784, 256, 128, 10), 256),
    "d": ((784, 1024, 1024, 10), 512),
    "w": ((784, 4096, 4096, 10), 512),
}
ALLREDUCE_BYTES = [2**k for k in range(10, 25, 2)] + [2**26]  # 1 KB .. 16 MB, 64 MB


def _network(sizes, batch, rows, comm_shard=None, compiled=True):
    from fastnn.engine.epoch_loop import EpochRunner
    from fastnn.engine.optim import SGDOptimizer
    from fastnn.engine.params import FlatParameters
    from fastnn.engine.step import TrainStep

    rng = np.random.default_rng(0)
    X = rng.random((rows, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], rows).astype(np.intp)
    params = FlatParameters(sizes, np.float32)
    for W in params.coefs:
        W[...] = rng.standard_normal(W.shape) * np.sqrt(2.0 / W.shape[0])
    grads = comm_shard.grads if comm_shard is not None else FlatParameters(sizes, np.float32)
    step = TrainStep(
        "numba",
        params.coefs,
        params.intercepts,
        batch,
        "relu",
        "softmax",
        grads.coefs,
        grads.intercepts,
    )
    optimizer = SGDOptimizer(params.size, np.float32, 0.1, 0.0)
    runner = EpochRunner(
        step,
        optimizer,
        params,
        grads,
        X,
        y,
        None,
        None,
        batch,
        0.0,
        compiled=compiled,
        shard=comm_shard,
    )
    return runner, step, params, grads, optimizer, X, y


# steps per timed epoch: about 0.1-0.5 s each
STEPS = {"b": 400, "c": 150, "d": 24}


def measure_steps(names, repeats, shard_group=None, compiled=True):
    """{config: ms per step} of whole epochs (the fastest of `repeats`: other work on a
    shared machine only ever adds time); compiled=False: the Python loop over
    batches that data-parallel epochs run."""
    out = {}
    for name in names:
        sizes, batch = CONFIGS[name]
        steps = STEPS[name]
        shard = None if shard_group is None else shard_group.batch_allreduce(sizes, np.float32)
        runner, *_ = _network(sizes, batch, steps * batch, shard, compiled)
        rows = np.random.default_rng(1).permutation(steps * batch)
        runner.run_epoch(rows)  # compile, warm the caches
        times = []
        for _ in range(repeats):
            if shard_group is not None:
                shard_group.comm.Barrier()
            started = time.perf_counter()
            runner.run_epoch(rows)
            times.append((time.perf_counter() - started) / steps * 1e3)
        out[name] = float(np.min(times))
    return out


def measure_curve(names, repeats):
    """{config: {"rows": [...], "grads_ms": [...], "update_ms": float}} at this thread count."""
    out = {}
    for name in names:
        sizes, batch = CONFIGS[name]
        runner, step, params, grads, optimizer, X, y = _network(sizes, batch, batch)
        ops = runner.ops
        rows, grads_ms = [], []
        for parts in (1, 2, 4, 8, 16, 32, 64):
            n = max(1, batch // parts)
            x, labels = X[:n], y[:n]
            step.batch_grads(x, labels, None, None, 1.0 / batch)
            once = _time(lambda: step.batch_grads(x, labels, None, None, 1.0 / batch))
            # about a second of calls, at least `repeats`
            times = [
                _time(lambda: step.batch_grads(x, labels, None, None, 1.0 / batch))
                for _ in range(max(repeats, min(2000, int(1.0 / max(once, 1e-6)))))
            ]
            rows.append(n)
            grads_ms.append(float(np.min(times)) * 1e3)
        optimizer.update_params(ops, params.data, grads.data)
        update = [
            _time(lambda: optimizer.update_params(ops, params.data, grads.data)) for _ in range(50)
        ]
        out[name] = {
            "rows": rows,
            "grads_ms": grads_ms,
            "update_ms": float(np.min(update)) * 1e3,
            "parameters": int(params.size),
        }
    return out


def _time(fn):
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure_allreduce(comm, repeats):
    from mpi4py import MPI

    out = {"bytes": [], "fastest_us": []}
    for nbytes in ALLREDUCE_BYTES:
        buf = np.ones(nbytes // 4, np.float32)
        calls = max(5, min(2000, (1 << 27) // nbytes))
        for _ in range(3):
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        samples = []
        for _ in range(repeats):
            comm.Barrier()
            started = time.perf_counter()
            for _ in range(calls):
                comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            samples.append((time.perf_counter() - started) / calls)
        out["bytes"].append(nbytes)
        out["fastest_us"].append(float(np.min(samples)) * 1e6)
    b = np.array(out["bytes"], float)
    t = np.array(out["fastest_us"], float) / 1e6
    fit = b <= 16 * 2**20  # the range
    # weighted by 1/t: relative errors, so that 1 KB counts as much as 16 MB
    beta, alpha = np.polyfit(b[fit], t[fit], 1, w=1 / t[fit])
    out["alpha_us"] = float(alpha * 1e6)
    out["beta_ns_per_byte"] = float(beta * 1e9)
    out["bandwidth_GB_per_s"] = float(1 / beta / 1e9)
    return out


def worker(kind, args):
    """Runs in a child process (under mpiexec for the 2-rank measurements)."""
    names = args.configs.split(",")
    if kind == "allreduce":
        from fastnn.distributed import data_parallel

        with data_parallel(threads=1) as group:
            result = measure_allreduce(group.comm, args.repeats)
            if group.is_root:
                print(json.dumps(result))
    elif kind == "steps-2x1":
        from fastnn.distributed import data_parallel

        with data_parallel(threads=1) as group:
            result = measure_steps([n for n in names if n != "w"], args.repeats, group)
            if group.is_root:
                print(json.dumps(result))
    elif kind == "steps":
        print(json.dumps(measure_steps([n for n in names if n != "w"], args.repeats)))
    elif kind == "steps-loop":
        print(
            json.dumps(measure_steps([n for n in names if n != "w"], args.repeats, compiled=False))
        )
    elif kind == "curve":
        print(json.dumps(measure_curve(names, args.repeats)))


def _child(command, threads):
    env = {
        **os.environ,
        "NUMBA_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
    }
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--configs", default="b,c,d,w")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args)
    me = [
        sys.executable,
        os.path.abspath(__file__),
        "--out",
        args.out,
        "--configs",
        args.configs,
        "--repeats",
        str(args.repeats),
        "--worker",
    ]
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        "unknown",
    )
    results = {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "allreduce_2_ranks": _child([mpiexec, "-n", "2", *me, "allreduce"], 1),
        "steps_1_rank_x_2_threads": _child([*me, "steps"], 2),
        "steps_1_rank_x_1_thread": _child([*me, "steps"], 1),
        "steps_1_rank_x_1_thread_python_loop": _child([*me, "steps-loop"], 1),
        "steps_2_ranks_x_1_thread": _child([mpiexec, "-n", "2", *me, "steps-2x1"], 1),
        "compute_curve_2_threads": _child([*me, "curve"], 2),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
