"""Every relative link in README.md and docs/ leads somewhere: a file that exists and,
when the link names a heading (`file.md#heading`), a heading of that file.

The README is the front door and the reference is spread over docs/ by subject, so a
moved section or a renamed file must not leave a link pointing at nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
# [text](target) and ![alt](target); a target ends at whitespace or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def prose(text: str) -> str:
    """The text without code blocks and code spans, where brackets are not links."""
    return CODE.sub("", FENCE.sub("", text))


def local_links(path: Path) -> list[str]:
    links = []
    for target in LINK.findall(prose(path.read_text())):
        if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, mailto:, …
            links.append(target)
    return links


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to -."""
    text = CODE.sub(lambda m: m.group(0).strip("`"), heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.MULTILINE)
    return {slug(heading) for heading in headings}


def broken(path: Path) -> list[str]:
    problems = []
    for target in local_links(path):
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            problems.append(f"{target}: no such heading")
    return problems


def test_it_reads_links_and_headings_as_github_does() -> None:
    text = 'See [a](a.md), ![b](img/b.png "t"), [c](https://x.org) and `[d](d.md)`.'
    assert LINK.findall(prose(text)) == ["a.md", "img/b.png", "https://x.org"]
    assert slug("Erasure requests (GDPR Art. 17)") == "erasure-requests-gdpr-art-17"
    assert slug("Who gets in, and suspending someone") == (
        "who-gets-in-and-suspending-someone"
    )
    assert slug("The `in_playlist` term") == "the-in_playlist-term"


def test_the_readme_links_every_reference_doc() -> None:
    readme = set(local_links(ROOT / "README.md"))
    docs = {f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")}
    assert docs <= readme, sorted(docs - readme)


@pytest.mark.parametrize(
    "path", markdown_files(), ids=lambda path: str(path.relative_to(ROOT))
)
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken(path) == []
