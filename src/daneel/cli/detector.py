"""`daneel detector fit`: fit an outlier or drift detector on training data and save its folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from daneel import detect
from daneel.detect.detectors import check_method
from daneel.detect.features import shown
from daneel.detect.folders import is_detector
from daneel.detect.options import CORRECTIONS, DEFAULTS, FIT_OPTIONS, METHODS, check
from daneel.errors import DaneelError, InvalidInput

#: Fields an error may name that the user gave as an option: named back to them as that option (`--p-value`).
_FLAGS = {"method", "data", *(key for keys in FIT_OPTIONS.values() for key in keys)}


@click.group()
def detector() -> None:
    """Fit outlier and drift detectors that a deployment's `detectors` point at."""


@detector.command("fit")
@click.option("--kind", type=click.Choice(list(METHODS)), required=True, help="What the detector finds.")
@click.option(
    "--method",
    required=True,
    help="outlier: zscore, mahalanobis, isolation-forest; drift: ks, chi2, mmd.",
)
@click.option(
    "--data",
    "data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Training rows: .csv (header optional), .npy or .parquet; every column a number.",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="The detector folder to write."
)
@click.option(
    "--percentile",
    type=float,
    help=f"outlier: threshold at this percentile of training scores [{DEFAULTS['percentile']:g}].",
)
@click.option("--threshold", type=float, help="outlier: this score as the threshold instead.")
@click.option(
    "--p-value", "p_value", type=float, help=f"drift: significance level, before correction [{DEFAULTS['p_value']}]."
)
@click.option("--window", type=int, help=f"drift: rows per test [{DEFAULTS['window']}].")
@click.option(
    "--correction",
    type=click.Choice(CORRECTIONS),
    help=f"ks, chi2: multiple-testing correction [{DEFAULTS['correction']}].",
)
@click.option("--categorical", metavar="COLS", help="ks: columns (names or 0-based indices) tested by chi-squared.")
@click.option("--columns", metavar="COLS", help="Use only these columns (comma-separated names), in this order.")
@click.option("--drop", metavar="COLS", help="Leave out these columns (comma-separated names), e.g. the label.")
@click.option("--trees", type=int, help=f"isolation-forest: number of trees [{DEFAULTS['trees']}].")
@click.option("--permutations", type=int, help=f"mmd: permutations for the p-value [{DEFAULTS['permutations']}].")
@click.option(
    "--reference-size",
    "reference_size",
    type=int,
    help=f"ks, mmd: most training rows kept as the reference [{DEFAULTS['reference_size']}].",
)
@click.option("--seed", type=int, help=f"Random seed: same data and seed, same detector [{DEFAULTS['seed']}].")
def fit_command(
    kind: str, method: str, data: Path, out: Path, columns: str | None, drop: str | None, **options: Any
) -> None:
    """Fit a detector on the rows of --data and save it to the folder --out.

    The folder is what a deployment's detector `modelUri` names. A folder that holds other files is left alone.
    """
    if out.exists() and any(out.iterdir()) and not is_detector(out):
        raise click.ClickException(f"{out} holds files and is not a detector folder; choose another --out")
    given = {key: value for key, value in options.items() if value is not None}
    try:
        _check(kind, method, given)
        X, names = detect.read_data(data, _names(columns) if columns else None, _names(drop or ""))
        fitted = detect.fit(kind, method, X, names, **given)
        detect.save(fitted, out)
    except DaneelError as exc:
        raise click.ClickException(_message(exc)) from None
    article = "an" if kind == "outlier" else "a"
    shape = f"{_count(X.shape[0], 'row')} x {_count(X.shape[1], 'feature')}"
    click.echo(f"fitted {article} {kind} detector ({method}) on {shape}: {_summary(fitted)}; saved to {out}")


def _check(kind: str, method: str, given: dict[str, Any]) -> None:
    """The method fits the kind, and takes every option given with a good value: said before reading the data."""
    check_method(kind, method)
    for key, value in given.items():
        if key not in FIT_OPTIONS[method]:
            takes = ", ".join(_flag(option) for option in FIT_OPTIONS[method])
            raise click.ClickException(f"{_flag(key)} does not apply to the {method} method, which takes {takes}")
        try:
            check(key, value)
        except ValueError as exc:
            raise click.ClickException(f"{_flag(key)}: {exc}") from None


def _flag(key: str) -> str:
    return f"--{key.replace('_', '-')}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _message(exc: DaneelError) -> str:
    if isinstance(exc, InvalidInput) and exc.field in _FLAGS:
        return f"{_flag(exc.field)}{exc.message[len(exc.field) :]}"
    return exc.message


def _summary(fitted: detect.Fitted) -> str:
    settings = fitted.settings
    if fitted.kind == "outlier":
        percentile = settings.get("percentile")
        how = "given" if percentile is None else f"{_ordinal(percentile)} percentile of training scores"
        return f"threshold {shown(fitted.threshold)} ({how})"
    if fitted.method == "mmd":
        how = f"permutation test, {settings['permutations']} permutations"
    else:
        how = f"{settings['correction']} correction"
        categorical = settings.get("categorical")
        how += f"; chi-squared for {', '.join(categorical)}" if categorical else ""
    return f"p-value {fitted.threshold:g} ({how}), windows of {fitted.window} rows"


def _ordinal(percentile: float) -> str:
    number = f"{percentile:g}"
    if not number.isdigit() or int(number) % 100 in (11, 12, 13):
        return f"{number}th"
    return number + {1: "st", 2: "nd", 3: "rd"}.get(int(number) % 10, "th")
