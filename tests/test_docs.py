"""The docs against what they describe: the endpoints the REST edge routes, the files their links name."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from daneel.dataplane.dataplane import DataPlane
from daneel.dataplane.repository import Repository
from daneel.observe.metrics import Registry
from daneel.observe.telemetry import ServerMetrics, Telemetry
from daneel.server.rest import RestApp

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
_FENCED = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)


def relative_links(page: Path) -> list[str]:
    """The targets of the page's links that name a file of the repository, outside code."""
    text = _CODE.sub("``", _FENCED.sub("", page.read_text()))
    targets = _INLINE_LINK.findall(text) + _REFERENCE.findall(text)
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:|#|/", t, flags=re.IGNORECASE)]


def test_protocols_md_names_every_path_the_rest_edge_routes() -> None:
    app = RestApp(DataPlane(Repository([]), Telemetry(metrics=ServerMetrics(Registry()))))
    text = (DOCS / "protocols.md").read_text()
    named = {path: re.compile(re.escape(path) + r"(?![\w/.-])") for path in app.routes}
    assert [path for path, pattern in named.items() if not pattern.search(text)] == []
    sentences = re.split(r"(?<=[.;])\s", " ".join(text.split()))
    absent = [s for s in sentences if re.search(r"not (there|implemented|served)", s)]
    assert [s for s in absent if any(pattern.search(s) for pattern in named.values())] == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_name_files_that_exist(page: Path) -> None:
    broken = [t for t in relative_links(page) if not (page.parent / unquote(t.partition("#")[0])).exists()]
    assert broken == [], f"{page.relative_to(ROOT)} links to files that do not exist"


def test_links_are_found_where_markdown_makes_them() -> None:
    page = DOCS / "contributing.md"
    assert "architecture.md" in relative_links(page)
    assert "../scripts/check_docs.py" in relative_links(page)
