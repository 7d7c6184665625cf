#!/usr/bin/env python
"""Run scikit-learn's own MLP tests with its estimators swapped for fastnn's.

This is what "swap the import" means for a user: scikit-learn's installed
``sklearn/neural_network/tests/test_mlp.py`` (run from the installed package,
not copied) imports ``MLPClassifier`` and ``MLPRegressor`` from
``sklearn.neural_network``; they are replaced there by fastnn's before the
test module is collected. Prints pytest's summary and one line per test.

    python scripts/sklearn_parity.py              # the whole file
    python scripts/sklearn_parity.py -k partial   # extra arguments go to pytest
"""

import os
import sys

import pytest
import sklearn
import sklearn.neural_network

import fastnn


class Tally:
    """A pytest plugin that counts outcomes per test function (parametrised cases folded)."""

    def __init__(self):
        self.outcomes = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            name = report.nodeid.split("::")[-1].split("[")[0]
            self.outcomes.setdefault(name, []).append(report.outcome)


def main(argv):
    sklearn.neural_network.MLPClassifier = fastnn.MLPClassifier
    sklearn.neural_network.MLPRegressor = fastnn.MLPRegressor
    path = os.path.join(
        os.path.dirname(sklearn.__file__), "neural_network", "tests", "test_mlp.py"
    )
    tally = Tally()
    code = pytest.main(
        [path, "-q", "-p", "no:cacheprovider", "--no-header", "-rN", "--tb=no", *argv],
        plugins=[tally],
    )
    passed = sorted(n for n, o in tally.outcomes.items() if all(x == "passed" for x in o))
    # skipped: every case skipped (an optional dependency such as pandas is missing)
    skipped = sorted(n for n, o in tally.outcomes.items() if all(x == "skipped" for x in o))
    failed = sorted(n for n in tally.outcomes if n not in passed and n not in skipped)
    print(
        f"\nscikit-learn {sklearn.__version__} test_mlp.py with fastnn {fastnn.__version__}: "
        f"{len(passed)} of {len(tally.outcomes)} test functions pass (every case)"
    )
    for label, names in (("pass", passed), ("skip", skipped), ("FAIL", failed)):
        for name in names:
            print(f"  {label}  {name}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
