"""What is wrong with a deployment file, each problem at the path of its field in the file's own terms.

A path reads as in the file: `spec.predictors[1].graph.children[0].modelUri`,
with YAML's names (aliases), never Python's attribute names.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from daneel.errors import LoadError

Loc = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def path(loc: Loc) -> str:
    """`("spec", "predictors", 1, "name")` as `spec.predictors[1].name`; odd keys as `["seldon.io/x"]`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f'["{part}"]'
    return text


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a deployment: where (`loc`), what was expected, and the file's line if known."""

    loc: Loc
    message: str
    line: int | None = None

    @property
    def path(self) -> str:
        return path(self.loc)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.loc else self.message


class InvalidDeployment(LoadError):
    """A deployment file that cannot be served; `problems` lists every reason, one per line of the message."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(_located(source, problem) for problem in problems))


def _located(source: str, problem: Problem) -> str:
    where = f"{source}:{problem.line}" if problem.line else source
    return f"{where}: {problem}"


def from_validation(exc: ValidationError, model: type[BaseModel]) -> list[Problem]:
    """pydantic's errors as problems at paths of `model`'s aliases."""
    return [Problem(tuple(error["loc"]), _message(error, model)) for error in exc.errors()]


def _message(error: Any, model: type[BaseModel]) -> str:
    kind = error["type"]
    loc = tuple(error["loc"])
    if kind == "extra_forbidden":
        return _unknown_field(str(loc[-1]), _fields_at(model, loc[:-1]))
    if kind == "missing":
        return "required field is missing"
    return f"{_expected(kind, error)}; got {_shown(error.get('input'))}"


def _expected(kind: str, error: Any) -> str:
    if kind in _EXPECTED:
        return _EXPECTED[kind]
    if kind == "enum":
        return f"expected one of {error['ctx']['expected']}"
    text = str(error["msg"])
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return text.replace("Input should be", "expected a number", 1)
    return text.replace("Input should be", "expected", 1) if text.startswith("Input should be") else text


_EXPECTED = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
}


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_field(name: str, allowed: list[str]) -> str:
    if not allowed:
        return "unknown field"
    close = difflib.get_close_matches(name, allowed, n=1)
    if close:
        return f"unknown field; did you mean {close[0]}?"
    return f"unknown field; expected one of {', '.join(allowed)}"


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The field names (aliases) accepted by the object at `loc` below `model`."""
    kind: Any = model
    for part in loc:
        kind = _step(kind, part)
        if kind is None:
            return []
    return _aliases(kind) if isinstance(kind, type) and issubclass(kind, BaseModel) else []


def _step(kind: Any, part: str | int) -> Any:
    kind = _unwrap_optional(kind)
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        field = next((f for n, f in kind.model_fields.items() if (f.alias or n) == part), None)
        return None if field is None else field.annotation
    args = get_args(kind)
    if get_origin(kind) is list and isinstance(part, int):
        return args[0]
    if get_origin(kind) is dict and isinstance(part, str):
        return args[1]
    return None


def _unwrap_optional(kind: Any) -> Any:
    args = [arg for arg in get_args(kind) if arg is not type(None)]
    if get_origin(kind) in (Union, UnionType) and len(args) == 1:
        return args[0]
    return kind


def _aliases(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]
