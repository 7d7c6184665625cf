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
