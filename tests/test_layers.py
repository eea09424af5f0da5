"""The layering of docs/architecture.md, checked by import-linter (contracts in pyproject.toml)."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def test_imports_point_down_the_layers() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    assert lint_imports.exists(), "import-linter is missing: pip install -e '.[dev]'"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _contracts() -> list[dict[str, Any]]:
    return list(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"])


def test_each_contract_cites_a_page_in_the_repository() -> None:
    for contract in _contracts():
        cited = re.search(r"\(([^)]+\.md)\)$", contract["name"])
        assert cited, f"{contract['name']!r} cites no page"
        assert (ROOT / cited.group(1)).is_file(), f"{contract['name']!r} cites a page the repository lacks"


def test_the_architecture_page_lists_the_layers_in_the_contracts_order() -> None:
    [layers] = [contract["layers"] for contract in _contracts() if contract["type"] == "layers"]
    contracted = [name.strip().removeprefix("daneel.") for layer in layers for name in layer.split("|")]
    page = (ROOT / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \|", page, flags=re.MULTILINE)
    assert rows == contracted
