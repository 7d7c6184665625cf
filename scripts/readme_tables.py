#!/usr/bin/env python
"""Put the committed benchmark results into the README, verbatim.

The README's performance tables sit between ``<!-- NAME: begin -->`` and
``<!-- NAME: end -->`` markers; each is the markdown file that its script
wrote into docs/bench/ (bench_peers: peers.md, bench_user_path: user_path.md).
tests/docs/test_bench_tables.py checks that they agree, and that each .md is
what its script renders from the .json of the same run.

    python scripts/readme_tables.py          # rewrite README.md in place
"""

import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]
TABLES = {"bench_peers": "docs/bench/peers.md", "bench_user_path": "docs/bench/user_path.md"}


def block(name, text):
    """The README text between NAME's markers, or None without them."""
    found = re.search(rf"<!-- {name}: begin -->\n(.*?)<!-- {name}: end -->", text, re.S)
    return None if found is None else found.group(1)


def splice(text):
    for name, path in TABLES.items():
        table = (REPO / path).read_text().strip() + "\n"
        text = re.sub(
            rf"(<!-- {name}: begin -->\n).*?(<!-- {name}: end -->)",
            lambda m, table=table: m.group(1) + table + m.group(2),
            text,
            flags=re.S,
        )
    return text


if __name__ == "__main__":
    readme = REPO / "README.md"
    readme.write_text(splice(readme.read_text()))
