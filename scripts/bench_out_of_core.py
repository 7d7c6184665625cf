"""Train config b on a memory-mapped uint8 data set larger than you would load: memory and speed.

Two subcommands:

    python scripts/bench_out_of_core.py make DIR --rows 10000000
        writes DIR/X.npy (rows x 784 random uint8 pixels: 7.84 GB for 10M rows)
        and DIR/y.npy (int64 labels), chunk by chunk;
    python scripts/bench_out_of_core.py train DIR [--rows N] [--shuffle blocks|rows]
                                                  [--in-memory] [--cold] [--evict-every S]
        one epoch of config b (docs/design.md section 8: 784-128-10, batch 128,
        plain SGD at learning rate 0.1, float32, Numba) over the first N rows,
        memory-mapped (default) or read into memory first (--in-memory), and
        prints one JSON line: samples/s, the process's anonymous memory
        (RssAnon, sampled every 5 ms: before, peak, growth), the bytes it
        read from disk (/proc/self/io) and its minor page faults.

--cold drops the file's pages from the page cache first (posix_fadvise
DONTNEED), so that the epoch reads from disk; --evict-every S also drops them
every S seconds during the epoch (madvise DONTNEED on the mapping, then
posix_fadvise), which is what training sees when the data do not fit the page
cache: every block comes from disk again. Only this file's pages are dropped.
"""

import argparse
import json
import mmap
import os
import threading
import time

import numpy as np

FEATURES = 784


def make(args):
    os.makedirs(args.directory, exist_ok=True)
    X = np.lib.format.open_memmap(
        os.path.join(args.directory, "X.npy"), "w+", np.uint8, (args.rows, FEATURES)
    )
    y = np.lib.format.open_memmap(
        os.path.join(args.directory, "y.npy"), "w+", np.int64, (args.rows,)
    )
    chunk = 100_000
    started = time.perf_counter()
    for start in range(0, args.rows, chunk):
        rng = np.random.default_rng(start)
        part = rng.integers(0, 256, (min(chunk, args.rows - start), FEATURES), dtype=np.uint8)
        X[start : start + part.shape[0]] = part
        # a learnable rule: the brighter half of the image decides the class
        y[start : start + part.shape[0]] = (
            part[:, :392].sum(1, dtype=np.int64) > part[:, 392:].sum(1, dtype=np.int64)
        ) * 5 + rng.integers(0, 5, part.shape[0])
    X.flush()
    y.flush()
    print(
        json.dumps(
            {"rows": args.rows, "bytes": X.nbytes, "seconds": time.perf_counter() - started}
        )
    )


def _status_kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _read_bytes():
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("read_bytes:"))


def _minor_faults():
    with open("/proc/self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])  # minflt, field 10


def _drop_cached(path, mapped=None):
    """Drop `path`'s clean pages from the page cache (and from our mapping first)."""
    if mapped is not None:
        mapped._mmap.madvise(mmap.MADV_DONTNEED)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def train(args):
    from fastnn import MLPClassifier

    x_path = os.path.join(args.directory, "X.npy")
    # compile on a small in-memory set first: neither its time nor its memory is the data's
    warm = np.random.default_rng(0).integers(0, 256, (1024, FEATURES), dtype=np.uint8)
    model = dict(
        hidden_layer_sizes=(128,),
        batch_size=128,
        solver="sgd",
        learning_rate_init=0.1,
        momentum=0.0,
        alpha=0.0,
        max_iter=1,
        random_state=0,
        shuffle=args.shuffle,
        dtype="float32",
        input_scale=1 / 255,  # the pixels, as fastnn train reads them
    )
    import warnings

    warnings.simplefilter("ignore")  # one epoch is what was asked
    MLPClassifier(**model).fit(warm, np.arange(1024) % 10)

    X_file = np.load(x_path, mmap_mode="r")
    y = np.load(os.path.join(args.directory, "y.npy"), mmap_mode="r")
    rows = args.rows or X_file.shape[0]
    if args.cold or args.evict_every:
        _drop_cached(x_path)
    X = np.array(X_file[:rows]) if args.in_memory else X_file[:rows]
    y = y[:rows]
    before, peak, done = _status_kib("RssAnon"), [0], threading.Event()

    def watch():
        last_drop = time.perf_counter()
        while not done.is_set():
            peak[0] = max(peak[0], _status_kib("RssAnon"))
            if args.evict_every and time.perf_counter() - last_drop > args.evict_every:
                _drop_cached(x_path, X_file)
                last_drop = time.perf_counter()
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    read_before, faults_before = _read_bytes(), _minor_faults()
    watcher.start()
    fitted = MLPClassifier(**model).fit(X, y)
    done.set()
    watcher.join()
    seconds = fitted.history_["seconds"][0]
    print(
        json.dumps(
            {
                "rows": rows,
                "shuffle": args.shuffle,
                "data": "in memory" if args.in_memory else "memory map",
                "cache": (
                    f"evicted every {args.evict_every:g}s"
                    if args.evict_every
                    else "cold"
                    if args.cold
                    else "page cache"
                ),
                "epoch_seconds": seconds,
                "samples_per_second": rows / seconds,
                "rss_anon_before_mib": before / 1024,
                "rss_anon_peak_mib": peak[0] / 1024,
                "rss_anon_growth_mib": (peak[0] - before) / 1024,
                "disk_read_mib": (_read_bytes() - read_before) / 2**20,
                "minor_faults": _minor_faults() - faults_before,
                "threads": os.environ.get("NUMBA_NUM_THREADS", "default"),
            }
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    maker = commands.add_parser("make")
    maker.add_argument("directory")
    maker.add_argument("--rows", type=int, default=10_000_000)
    trainer = commands.add_parser("train")
    trainer.add_argument("directory")
    trainer.add_argument("--rows", type=int, help="train on the first ROWS rows (default: all)")
    trainer.add_argument("--shuffle", choices=["blocks", "rows"], default="blocks")
    trainer.add_argument(
        "--in-memory", action="store_true", help="copy the rows into memory first (the comparison)"
    )
    trainer.add_argument(
        "--cold", action="store_true", help="drop the file from the page cache before the epoch"
    )
    trainer.add_argument(
        "--evict-every",
        type=float,
        metavar="S",
        help="drop the file from the page cache every S seconds",
    )
    args = parser.parse_args(argv)
    make(args) if args.command == "make" else train(args)


if __name__ == "__main__":
    main()
