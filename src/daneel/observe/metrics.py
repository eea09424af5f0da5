"""Prometheus metrics: counters, gauges and histograms, cheap enough for the request path.

A :class:`Registry` is made by whoever serves and handed to what records (never a
module global). Each labelled series owns a few float slots in a :class:`Slots`
area: a histogram's buckets, sum and count, or one value. Recording is an indexed
add, with no lock: every series is written from its worker's event loop. A family
may also show another family's series as its own (:meth:`Family.view`): two
families that always record the same observation then pay for one.

With several worker processes each worker's area is a file in a folder they share
(:meth:`Slots.shared`), next to a list of the series it holds; a scrape, whichever
worker answers it, reads every worker's file and adds them up, so the counts are
exact for the whole server. Counters and histograms of a worker that has exited
still count; gauges count only workers that are alive, and are added up, or the
lowest or highest of them taken, as their family's `merge` says.
"""

from __future__ import annotations

import array
import bisect
import math
import mmap
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

#: Latency buckets from 100 µs to 10 s: a fast model's answers land in the first few.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075,
    0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
#: Batch sizes and other small counts.
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

Kind = Literal["counter", "gauge", "histogram"]
#: How a scrape combines one gauge series of several live workers.
Merge = Literal["sum", "min", "max"]
MERGES: tuple[Merge, ...] = ("sum", "min", "max")
#: Where a series' slots are, under a name and label values: (name, labels, first slot, slot count).
Record = tuple[str, tuple[str, ...], int, int]

_SLOT = 8  # bytes in a float64
_AREA_SLOTS = 1 << 19  # 4 MiB of address space per process; pages are allocated only when written
_VALUES = ".values"
_SERIES = ".series"


class Values(Protocol):
    """Slots by index: a list in one process, or a float64 view of a file that other workers read."""

    def __getitem__(self, index: int, /) -> float: ...

    def __setitem__(self, index: int, value: float, /) -> None: ...


class Slots:
    """Float slots that series are given in turn; in memory, or in a file other workers read."""

    def __init__(self, values: Values, series_file: Path | None = None, area: mmap.mmap | None = None) -> None:
        self._area = area  # kept open for as long as `values` views it
        self.values = values
        self.records: list[Record] = []  # every series and view, in the order they were made
        self._series_file = series_file.open("ab") if series_file else None
        self._used = 0

    @classmethod
    def local(cls) -> Slots:
        # A list rather than a memoryview: an indexed add on it costs about half as much (19 ns against 41).
        return cls([])

    @classmethod
    def shared(cls, folder: Path, worker: int | None = None) -> Slots:
        """This process's slots in `folder`, where every worker of one server keeps its own."""
        stem = folder / str(worker if worker is not None else os.getpid())
        with open(stem.with_suffix(_VALUES), "w+b") as file:
            file.truncate(_AREA_SLOTS * _SLOT)
            area = mmap.mmap(file.fileno(), _AREA_SLOTS * _SLOT)
        return cls(memoryview(area).cast("d"), stem.with_suffix(_SERIES), area)

    def take(self, key: tuple[str, tuple[str, ...]], count: int) -> int:
        """The first of `count` slots for a series, named so that other workers can find them."""
        if self._used + count > _AREA_SLOTS:
            raise OverflowError(f"more than {_AREA_SLOTS} metric values; too many label combinations")
        first, self._used = self._used, self._used + count
        if isinstance(self.values, list):
            self.values.extend([0.0] * count)
        self.show(key, first, count)
        return first

    def show(self, key: tuple[str, tuple[str, ...]], first: int, count: int) -> None:
        """Render slots already taken as series `key` (too); several series of one key add up."""
        self.records.append((key[0], key[1], first, count))
        self._note(["S", key[0], key[1], first, count])

    def read(self, first: int, count: int) -> list[float]:
        return [self.values[i] for i in range(first, first + count)]

    def describe(self, family: Family) -> None:
        """Tell other workers of a family, so that they can render one they have not made themselves."""
        self._note(["F", family.name, family.kind, family.help, family.labelnames, family.buckets, family.merge])

    def _note(self, line: list[object]) -> None:
        if self._series_file is not None:
            self._series_file.write(orjson.dumps(line) + b"\n")
            self._series_file.flush()

    def close(self) -> None:
        if self._series_file is not None:
            self._series_file.close()


class Counter:
    __slots__ = ("_slot", "_values")

    def __init__(self, values: Values, slot: int) -> None:
        self._values, self._slot = values, slot

    def inc(self, amount: float = 1.0) -> None:
        self._values[self._slot] += amount


class Gauge(Counter):
    __slots__ = ()

    def set(self, value: float) -> None:
        self._values[self._slot] = value

    def dec(self, amount: float = 1.0) -> None:
        self._values[self._slot] -= amount


class Histogram:
    """Buckets (not cumulative: each observation adds to one), then the sum, then the count."""

    __slots__ = ("_bounds", "_first", "_sum", "_values")

    def __init__(self, values: Values, first: int, bounds: Sequence[float]) -> None:
        self._values, self._first, self._bounds = values, first, bounds
        self._sum = first + len(bounds) + 1

    def observe(self, value: float) -> None:
        values = self._values
        values[self._first + bisect.bisect_left(self._bounds, value)] += 1.0
        values[self._sum] += value
        values[self._sum + 1] += 1.0


Series = Counter | Gauge | Histogram


@dataclass(slots=True)
class Family:
    """One metric name and its series, one per combination of label values."""

    name: str
    help: str
    kind: Kind
    labelnames: tuple[str, ...]
    slots: Slots
    buckets: tuple[float, ...] = ()
    merge: Merge = "sum"  # for a gauge, how a scrape combines the workers' values
    series: dict[tuple[str, ...], Series] = field(default_factory=dict)
    _views: set[tuple[tuple[str, ...], int]] = field(default_factory=set)

    def labels(self, *values: str) -> Series:
        """The series for these label values (in `labelnames` order), made on first use."""
        found = self.series.get(values)
        if found is None:
            found = self.series[values] = self._new(values)
        return found

    def counter(self, *values: str) -> Counter:
        series = self.labels(*values)
        assert isinstance(series, Counter)
        return series

    def gauge(self, *values: str) -> Gauge:
        series = self.labels(*values)
        assert isinstance(series, Gauge)
        return series

    def histogram(self, *values: str) -> Histogram:
        series = self.labels(*values)
        assert isinstance(series, Histogram)
        return series

    def view(self, source: Series, *values: str) -> None:
        """Show `source`, a series of another family, as this family's series `values` as well.

        Recording into `source` then records here too, at no cost: for two families that always
        observe the same thing. A histogram family views a histogram with the same buckets; a counter
        family views a counter, or a histogram's count. Views of one label set add up, with each
        other and with a series of this family's own.
        """
        self._check(values)
        first, count = self._viewed(source)
        if (values, first) not in self._views:  # viewing the same series again changes nothing
            self._views.add((values, first))
            self.slots.show((self.name, values), first, count)

    def _viewed(self, source: Series) -> tuple[int, int]:
        """The slots of `source` that this family's kind can show: all of a histogram's, or one value."""
        if source._values is not self.slots.values:
            raise ValueError(f"{self.name} can only view series of its own registry")
        if isinstance(source, Histogram) and self.kind == "histogram" and tuple(source._bounds) == self.buckets:
            return source._first, self.width()
        if isinstance(source, Histogram) and self.kind == "counter":
            return source._sum + 1, 1
        if type(source) is Counter and self.kind == "counter":
            return source._slot, 1
        raise ValueError(f"{self.name} (a {self.kind}) cannot view a {type(source).__name__.lower()}")

    def width(self) -> int:
        return len(self.buckets) + 3 if self.kind == "histogram" else 1

    def _check(self, values: tuple[str, ...]) -> None:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")

    def _new(self, values: tuple[str, ...]) -> Series:
        self._check(values)
        first = self.slots.take((self.name, values), self.width())
        if self.kind == "histogram":
            return Histogram(self.slots.values, first, self.buckets)
        return Gauge(self.slots.values, first) if self.kind == "gauge" else Counter(self.slots.values, first)


class Registry:
    """The metric families of one server; rendered in Prometheus's text format by :func:`render`."""

    def __init__(self, slots: Slots | None = None, folder: Path | None = None) -> None:
        self.slots = slots or Slots.local()
        self.folder = folder  # set when workers share their slots through files in it
        self.families: dict[str, Family] = {}

    def counter(self, name: str, help: str, labelnames: Iterable[str] = ()) -> Family:
        return self._family(name, help, "counter", tuple(labelnames))

    def gauge(self, name: str, help: str, labelnames: Iterable[str] = (), merge: Merge = "sum") -> Family:
        """A gauge family; `merge` is how a scrape of several workers combines each series: the sum of the
        live workers' values (as for requests in flight), or the lowest or highest of them (a p-value, a load time)."""
        if merge not in MERGES:
            raise ValueError(f"gauge {name}: merge {merge!r} is not one of {', '.join(MERGES)}")
        return self._family(name, help, "gauge", tuple(labelnames), merge=merge)

    def histogram(
        self, name: str, help: str, labelnames: Iterable[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Family:
        return self._family(name, help, "histogram", tuple(labelnames), tuple(sorted(buckets)))

    def _family(
        self,
        name: str,
        help: str,
        kind: Kind,
        labelnames: tuple[str, ...],
        buckets: tuple[float, ...] = (),
        merge: Merge = "sum",
    ) -> Family:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = Family(name, help, kind, labelnames, self.slots, buckets, merge)
            self.slots.describe(family)
        elif (family.kind, family.labelnames, family.buckets, family.merge) != (kind, labelnames, buckets, merge):
            raise ValueError(f"metric {name} is already a {family.kind} with labels {family.labelnames}")
        return family

    def render(self) -> bytes:
        """Every series' values: this process's own, or every worker's combined."""
        families, totals = self.collect()
        return render(families.values(), totals)

    def collect(self) -> tuple[dict[str, Family], Totals]:
        """The families and every series' values, as a scrape reads them: this process's own, or every
        worker's combined. A histogram's values are its buckets (not cumulative), then its sum and count."""
        totals: Totals = {}
        if self.folder is None:
            for name, labels, first, count in self.slots.records:
                _combine(totals, self.families[name], labels, self.slots.read(first, count))
            return self.families, totals
        families = dict(self.families)
        _read_folder(self.folder, families, self.slots, totals)
        return families, totals

    def close(self) -> None:
        self.slots.close()


Totals = dict[tuple[str, tuple[str, ...]], list[float]]


def _combine(totals: Totals, family: Family, labels: tuple[str, ...], values: list[float]) -> None:
    """Add one worker's series (or one view of it) into the totals; a gauge merges as its family says."""
    total = totals.get((family.name, labels))
    if total is None:
        totals[(family.name, labels)] = values
    elif family.kind == "gauge" and family.merge != "sum":
        pick = min if family.merge == "min" else max
        totals[(family.name, labels)] = [pick(a, b) for a, b in zip(total, values, strict=True)]
    else:
        for i, value in enumerate(values):
            total[i] += value


def _read_folder(folder: Path, families: dict[str, Family], slots: Slots, totals: Totals) -> None:
    """Every worker's series in `folder`, combined; `families` gains those that only other workers made."""
    for series_file in sorted(folder.glob(f"*{_SERIES}")):
        alive = _alive(series_file.stem)
        series: list[Record] = []
        for line in _lines(series_file):
            if line[0] == "F" and line[1] not in families:
                name, kind, help, labelnames, buckets, *merge = line[1:]
                families[name] = Family(name, help, kind, tuple(labelnames), slots, tuple(buckets), *merge[:1])
            elif line[0] == "S":
                series.append((line[1], tuple(line[2]), line[3], line[4]))
        end = max((first + count for _, _, first, count in series), default=0)
        with open(series_file.with_suffix(_VALUES), "rb") as file:
            values = array.array("d", file.read(end * _SLOT))
        for name, labels, first, count in series:
            family = families.get(name)
            if family is not None and (family.kind != "gauge" or alive):
                _combine(totals, family, labels, values[first : first + count].tolist())


def _lines(path: Path) -> Iterator[list[Any]]:
    for line in path.read_bytes().splitlines():
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a line the worker was still writing


def _alive(stem: str) -> bool:
    """Whether the worker that owns a file (named by its process id) still runs."""
    try:
        os.kill(int(stem), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def render(families: Iterable[Family], totals: Totals) -> bytes:
    """Prometheus's text exposition format, version 0.0.4."""
    by_name: dict[str, list[tuple[tuple[str, ...], list[float]]]] = {}
    for (name, labels), values in totals.items():
        by_name.setdefault(name, []).append((labels, values))
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, values in sorted(by_name.get(family.name, ())):
            lines.extend(_samples(family, labels, values))
    lines.append("")
    return "\n".join(lines).encode()


def _samples(family: Family, labels: tuple[str, ...], values: list[float]) -> list[str]:
    pairs = [f'{k}="{_escape(v)}"' for k, v in zip(family.labelnames, labels, strict=True)]
    if family.kind != "histogram":
        return [f"{family.name}{_braces(pairs)} {_number(values[0])}"]
    out, cumulative = [], 0.0
    bounds = [*family.buckets, math.inf]
    for bound, count in zip(bounds, values, strict=False):
        cumulative += count
        le = 'le="' + _number(bound) + '"'
        out.append(f"{family.name}_bucket{_braces([*pairs, le])} {_number(cumulative)}")
    out.append(f"{family.name}_sum{_braces(pairs)} {_number(values[-2])}")
    out.append(f"{family.name}_count{_braces(pairs)} {_number(values[-1])}")
    return out


def _braces(pairs: list[str]) -> str:
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if value != int(value) or abs(value) >= 1e15 else f"{int(value)}.0"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")
