"""YAML as the renderer writes it: keys in the order built, multi-line strings as `|` blocks.

The same objects always give the same bytes, so a GitOps diff shows only what changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings (an embedded deployment file) as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True  # an object shared by two places is written twice, never as an anchor


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def dump(data: Any) -> str:
    """One YAML document."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def dump_all(documents: Iterable[Any]) -> str:
    """Several YAML documents, each starting with `---`."""
    return yaml.dump_all(
        list(documents), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120, explicit_start=True
    )
