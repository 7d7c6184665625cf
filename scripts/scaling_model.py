"""The data-parallel scaling model of docs/distributed.md, from measured inputs.

Reads the JSON of `scripts/bench_data_parallel.py` and prints markdown tables:
step time and efficiency on P = 1..64 nodes at 10 and 100 Gbit/s, for
configs b, c, d and w (784-4096-4096-10, batch 512), with the global batch
fixed (each step is the single process's step):

    T(P) = t_grads(B / P) + t_update + [P > 1] (t_loop + t_allreduce(P, S))
    t_allreduce(P, S) = 2 log2(P) alpha + 2 (P - 1) / P * S / bandwidth
                        + (P - 1) / P * S * gamma
    E(P) = T(1) / (P T(P))

measured on one node (this machine, 2 threads): t_grads(n), one slice's
gradients for n rows; t_update, the optimizer update of all S bytes of
parameters (every rank applies it); t_loop, the per-step cost of the Python
loop that data-parallel epochs run instead of the compiled epoch, and gamma,
the time per byte to add a received buffer (both from the 2-rank runs).
modelled: the network's latency alpha and bandwidth, and the Allreduce
algorithm (Rabenseifner's reduce-scatter + allgather: log2 P latency steps
each way, each node sending and receiving 2 (P - 1) / P of the buffer).

    python scripts/scaling_model.py results/dp-1.json results/dp-2.json ...
"""

import argparse
import json
import math

import numpy as np

NODES = [1, 2, 4, 8, 16, 32, 64]
# modelled networks: (name, bandwidth in bytes/s, one message's latency in s)
NETWORKS = [
    ("10 Gbit/s Ethernet (TCP)", 10e9 / 8, 25e-6),
    ("100 Gbit/s (RDMA: InfiniBand, RoCE)", 100e9 / 8, 3e-6),
]
CONFIG_NAMES = {
    "b": "b 784-128-10 /128",
    "c": "c 784-256-128-10 /256",
    "d": "d 784-1024-1024-10 /512",
    "w": "w 784-4096-4096-10 /512",
}


def inputs(results):
    """The measured terms of the model, from bench_data_parallel.py's JSON."""
    compiled = results["steps_1_rank_x_1_thread"]
    loop = results["steps_1_rank_x_1_thread_python_loop"]
    # the data-parallel epoch's Python loop over the compiled one, per step
    extra = sorted(loop[name] - compiled[name] for name in compiled)
    return {
        "curve": results["compute_curve_2_threads"],
        # adding a received buffer, taken as the local Allreduce's cost per byte
        # (copies through shared memory included: an upper bound)
        "gamma": results["allreduce_2_ranks"]["beta_ns_per_byte"] * 1e-9,
        "t_loop": max(0.0, extra[len(extra) // 2]) / 1e3,
    }


def _grads_ms(curve, rows):
    """t_grads at `rows`, interpolated linearly between the measured slice sizes."""
    xs, ys = curve["rows"][::-1], curve["grads_ms"][::-1]
    if rows <= xs[0]:
        return ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if rows <= x1:
            return y0 + (y1 - y0) * (rows - x0) / (x1 - x0)
    return ys[-1] * rows / xs[-1]


def step_seconds(model, name, nodes, bandwidth, latency):
    curve = model["curve"][name]
    batch, S = curve["rows"][0], curve["parameters"] * 4
    t = (_grads_ms(curve, max(1, batch // nodes)) + curve["update_ms"]) / 1e3
    if nodes > 1:
        share = (nodes - 1) / nodes * S
        t += (
            model["t_loop"]
            + 2 * math.log2(nodes) * latency
            + 2 * share / bandwidth
            + share * model["gamma"]
        )
    return t


def tables(results):
    model = inputs(results)
    lines = [
        f"Measured inputs: gamma = {model['gamma'] * 1e9:.3f} ns/byte, "
        f"t_loop = {model['t_loop'] * 1e6:.0f} us; t_grads and t_update per config "
        "from compute_curve_2_threads.",
        "",
    ]
    for network, bandwidth, latency in NETWORKS:
        lines.append(f"**{network}**, alpha = {latency * 1e6:g} us: ms per step (efficiency)")
        lines.append("")
        lines.append(
            "| config | "
            + " | ".join(f"P={p}" for p in NODES)
            + " | fastest at | efficiency >= 50 % up to |"
        )
        lines.append("| --- |" + " ---: |" * len(NODES) + " ---: | ---: |")
        for name in model["curve"]:
            times = [step_seconds(model, name, p, bandwidth, latency) for p in NODES]
            efficiency = [times[0] / (p * t) for p, t in zip(NODES, times)]
            cells = [f"{t * 1e3:.3g} ({e:.0%})" for t, e in zip(times, efficiency)]
            best = NODES[min(range(len(NODES)), key=times.__getitem__)]
            half = max(p for p, e in zip(NODES, efficiency) if e >= 0.5)
            lines.append(
                f"| {CONFIG_NAMES[name]} | " + " | ".join(cells) + f" | {best} | {half} |"
            )
        lines.append("")
    return "\n".join(lines)


def fastest(runs):
    """The runs' JSON merged by taking every timing's minimum over the runs (other work
    on a shared machine only adds time); the Allreduce fit is redone on the minima."""
    merged = json.loads(json.dumps(runs[0]))

    def merge(into, others):
        for key, value in into.items():
            if isinstance(value, dict):
                merge(value, [o[key] for o in others])
            elif isinstance(value, list) and value and isinstance(value[0], float):
                into[key] = [min(vs) for vs in zip(value, *(o[key] for o in others))]
            elif isinstance(value, float) and key not in FITTED:
                into[key] = min([value, *(o[key] for o in others)])

    merge(merged, runs[1:])
    allreduce = merged["allreduce_2_ranks"]
    b = np.array(allreduce["bytes"], float)
    t = np.array(allreduce["fastest_us"]) / 1e6
    fit = b <= 16 * 2**20
    beta, alpha = np.polyfit(b[fit], t[fit], 1, w=1 / t[fit])
    allreduce.update(
        alpha_us=alpha * 1e6, beta_ns_per_byte=beta * 1e9, bandwidth_GB_per_s=1 / beta / 1e9
    )
    return merged


FITTED = ("alpha_us", "beta_ns_per_byte", "bandwidth_GB_per_s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "results",
        nargs="+",
        help="JSON written by scripts/bench_data_parallel.py; several runs "
        "are merged by their fastest figures",
    )
    parser.add_argument("--merged", metavar="PATH", help="also write the merged JSON")
    args = parser.parse_args(argv)
    runs = []
    for path in args.results:
        with open(path) as f:
            runs.append(json.load(f))
    results = fastest(runs)
    if args.merged:
        with open(args.merged, "w") as f:
            json.dump(results, f, indent=1)
    print(tables(results))


if __name__ == "__main__":
    main()
