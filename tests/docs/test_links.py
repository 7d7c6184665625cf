"""The repository stands on its own: every document a file cites is in it.

The design notes are `docs/design.md`. These tests fail when a file of the
repository cites a design note that lives elsewhere (the upper-case note the
project started from, which is not part of it), a `docs/` file that does not
exist, or a section of `docs/design.md` that has no heading.
"""

import re
import subprocess

import pytest

from tests.helpers import REPO

# The outside note's name as a word, with or without ".md". The brackets keep
# this line from matching itself.
OUTSIDE_NOTE = re.compile(r"\bDESIG[N]\b")
# docs/... paths, but not tests/docs/... or a URL's /docs/
DOCS_PATH = re.compile(r"(?<![\w/.-])docs/[\w./-]*\w")
# "docs/design.md section 8", "docs/design.md, section 2", "docs/design.md s. 6"
# (the path in two pieces, so that DOCS_PATH does not find a stub of it here)
SECTION = re.compile(re.escape("docs/" + "design.md") + r",?\s+(?:section|s\.)\s+(\d+)")
SKIPPED_DIRS = {
    ".git",
    "__pycache__",
    ".venv",
    "build",
    "dist",
    ".hypothesis",
    ".pytest_cache",
    "env",
    "results",
    "html",
    ".asv",
}


def repository_files():
    """The files of the repository: git's tracked and untracked-but-not-ignored
    files, or (outside a checkout) every file not in a build or cache folder."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        paths = [REPO / name for name in listed.decode().split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        paths = [
            p
            for p in REPO.rglob("*")
            if not SKIPPED_DIRS.intersection(p.relative_to(REPO).parts[:-1])
            and not any(part.endswith(".egg-info") for part in p.parts)
        ]
    return [p for p in paths if p.is_file()]


def text_files():
    """(relative path, text) of every file that is not binary."""
    files = []
    for path in repository_files():
        data = path.read_bytes()
        if b"\0" not in data:
            files.append(
                (path.relative_to(REPO).as_posix(), data.decode("utf-8", errors="replace"))
            )
    return files


def citations(pattern, files):
    """(file:line, match) for every match of `pattern`."""
    found = []
    for name, text in files:
        for number, line in enumerate(text.splitlines(), start=1):
            found.extend((f"{name}:{number}", m) for m in pattern.finditer(line))
    return found


@pytest.fixture(scope="module")
def files():
    files = text_files()
    names = {name for name, _ in files}
    # the listing itself works: the package, the tests and this file are in it
    assert {"README.md", "fastnn/__init__.py", "tests/docs/test_links.py"} <= names
    return files


def test_no_file_cites_the_outside_design_note(files):
    cited = [where for where, _ in citations(OUTSIDE_NOTE, files)]
    assert not cited, f"cite docs/design.md instead, at {cited}"


def test_every_cited_docs_file_exists(files):
    cited = citations(DOCS_PATH, files)
    assert any(m.group() == "docs/design.md" for _, m in cited)  # the pattern finds them
    missing = [
        (where, m.group()) for where, m in cited if not (REPO / m.group().rstrip(".")).exists()
    ]
    assert not missing, f"cited but not in the repository: {missing}"


def test_every_cited_section_of_the_design_notes_exists(files):
    headings = re.findall(r"^## (\d+)\. ", (REPO / "docs" / "design.md").read_text(), re.M)
    assert headings == [str(i) for i in range(1, len(headings) + 1)], "sections numbered 1, 2, ..."
    cited = citations(SECTION, files)
    assert cited  # the pattern finds them
    missing = [(where, m.group()) for where, m in cited if m.group(1) not in headings]
    assert not missing, f"docs/design.md has no such section: {missing}"


def module_map():
    """The modules that docs/design.md's module map names, as paths under fastnn/."""
    text = (REPO / "docs" / "design.md").read_text()
    table = text.split("### Module map", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("|")]
    return {path for row in rows for path in re.findall(r"`([\w/]+\.py)`", row.split("|")[2])}


def test_the_module_map_names_every_module_and_only_modules_that_exist():
    named = module_map()
    assert "contract/spec.py" in named  # the pattern finds them
    package = REPO / "fastnn"
    present = {
        p.relative_to(package).as_posix()
        for p in package.rglob("*.py")
        # a layer folder's __init__ only says what the folder holds; the package's
        # and the data layer's (fastnn.datasets itself) hold code
        if p.name != "__init__.py" or p.parent.name in ("fastnn", "datasets")
    }
    assert not named - present, f"the map names modules that do not exist: {named - present}"
    assert not present - named, f"modules missing from the map: {present - named}"
