"""The docs against what they describe: the endpoints the REST edge routes."""

from __future__ import annotations

import re
from pathlib import Path

from daneel.dataplane.dataplane import DataPlane
from daneel.dataplane.repository import Repository
from daneel.observe.metrics import Registry
from daneel.observe.telemetry import ServerMetrics, Telemetry
from daneel.server.rest import RestApp

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_protocols_md_names_every_path_the_rest_edge_routes() -> None:
    app = RestApp(DataPlane(Repository([]), Telemetry(metrics=ServerMetrics(Registry()))))
    text = (DOCS / "protocols.md").read_text()
    named = {path: re.compile(re.escape(path) + r"(?![\w/.-])") for path in app.routes}
    assert [path for path, pattern in named.items() if not pattern.search(text)] == []
    sentences = re.split(r"(?<=[.;])\s", " ".join(text.split()))
    absent = [s for s in sentences if re.search(r"not (there|implemented|served)", s)]
    assert [s for s in absent if any(pattern.search(s) for pattern in named.values())] == []
