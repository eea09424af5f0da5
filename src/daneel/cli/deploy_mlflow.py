"""`daneel deploy-mlflow URI --to FILE [--canary P]`: a registered MLflow version into a deployment file.

The URI (`models:/iris@champion`, `models:/iris/latest`, `models:/iris/4`) is resolved to a version
first, and the file names that version (`models:/iris/4`), so that what a file serves never moves
with an alias. A new file serves it alone. In an existing file whose predictors serve other versions
of the model, the version goes out as a canary beside the one that takes most requests (`--canary P`),
or replaces them all (no `--canary`: a promotion). Predictors are named after the version they serve
(`v4`); the rest of the file is kept, though not its comments or layout (it is read and written as
YAML data). The result is validated as `daneel validate` would before the file is replaced.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import click
import yaml

from daneel.errors import DaneelError
from daneel.runtime import mlflow_registry
from daneel.spec import load
from daneel.spec.model import API_VERSION, KIND

Document = dict[str, Any]
Predictor = dict[str, Any]


@click.command("deploy-mlflow")
@click.argument("uri")
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The deployment file to write, or to update when it exists.",
)
@click.option(
    "--canary",
    metavar="P",
    type=click.IntRange(1, 99),
    help="Send P% of requests to the new version and the rest to the current one, instead of replacing it.",
)
@click.option("--name", metavar="NAME", help="metadata.name of a new file (default: the registered model's name).")
@click.option(
    "--env-secret",
    "secret",
    metavar="SECRET",
    help="For a new file: the Kubernetes Secret holding MLFLOW_TRACKING_URI and its credentials for the model's"
    " pods (the node's envSecretRefName).",
)
def deploy_mlflow(uri: str, target: Path, canary: int | None, name: str | None, secret: str | None) -> None:
    """Serve a registered MLflow version from a deployment file, alone or as a canary.

    URI is models:/NAME@ALIAS, models:/NAME/latest or models:/NAME/VERSION; MLFLOW_TRACKING_URI names
    the tracking server that resolves it to a version, which FILE then names.
    """
    try:
        reference = _registered(uri)
        document = _read(target) if target.exists() else new_deployment(reference, name, secret)
        summary = update(document, reference, canary, str(target))
        _write(target, document)
    except DaneelError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(summary)


def _registered(uri: str) -> mlflow_registry.Reference:
    if not uri.startswith("models:/"):
        raise DaneelError(f"{uri}: expected a registered model, models:/NAME@ALIAS or models:/NAME/VERSION")
    reference = mlflow_registry.resolve(uri)
    assert reference.version is not None, "resolve pins a models:/ URI to a version"
    return reference


def new_deployment(reference: mlflow_registry.Reference, name: str | None, secret: str | None = None) -> Document:
    """A deployment with one predictor serving `reference` with MLflow's server."""
    node = {"name": _dns_name(reference.name), "implementation": "MLFLOW_SERVER", "modelUri": reference.uri}
    node |= {"envSecretRefName": secret} if secret else {}
    predictor = {"name": f"v{reference.version}", "traffic": 100, "graph": node}
    metadata = {"name": name or _dns_name(reference.name)}
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": {"predictors": [predictor]}}


def update(document: Document, reference: mlflow_registry.Reference, canary: int | None, source: str) -> str:
    """Make `document` serve `reference`, as a canary at `canary`% or alone; a line saying what changed."""
    predictors = _predictors(document, source)
    served = [p for p in predictors if not p.get("shadow")]
    if not served:
        raise DaneelError(f"{source}: no predictor to update (only a shadow)")
    foreign = [str(p.get("name")) for p in served if not _versions(p, reference.name)]
    if foreign:
        raise DaneelError(
            f"{source}: predictor(s) {', '.join(foreign)} serve no version of models:/{reference.name}; deploy-mlflow"
            " updates files whose predictors all serve one registered model"
        )
    new = next((p for p in served if _versions(p, reference.name) == {reference.version}), None)
    if canary is None:
        kept = new or _retarget(_main(served, reference.name, None), reference)
        kept["traffic"] = 100
        document["spec"]["predictors"] = [p for p in predictors if p is kept or p.get("shadow")]
        return f"{source}: {kept['name']} serves {reference.uri} to 100% of requests"
    current = _main(served, reference.name, reference.version)
    if current is None:
        raise DaneelError(f"{source}: serves only {reference.uri} already; a canary needs another version beside it")
    arrival = new or _retarget(copy.deepcopy(current), reference, rename=True)
    current["traffic"], arrival["traffic"] = 100 - canary, canary
    document["spec"]["predictors"] = [p for p in predictors if p is current or p.get("shadow")]
    document["spec"]["predictors"].insert(document["spec"]["predictors"].index(current) + 1, arrival)
    return (
        f"{source}: {arrival['name']} serves {reference.uri} to {canary}% of requests,"
        f" {current['name']} the rest ({100 - canary}%)"
    )


def _predictors(document: Document, source: str) -> list[Predictor]:
    spec = document.get("spec") if isinstance(document, dict) else None
    predictors = spec.get("predictors") if isinstance(spec, dict) else None
    if not isinstance(predictors, list) or not all(isinstance(p, dict) for p in predictors):
        raise DaneelError(f"{source}: expected a deployment with spec.predictors, a list of predictors")
    return predictors


def _main(served: list[Predictor], model: str, other_than: str | None) -> Any:
    """The predictor taking most requests among those not serving version `other_than`; None if there is none."""
    candidates = [p for p in served if other_than is None or _versions(p, model) != {other_than}]
    lone = len(served) == 1
    return max(candidates, key=lambda p: p.get("traffic") or (100 if lone else 0), default=None)


def _versions(predictor: Predictor, model: str) -> set[str | None]:
    """The versions of registered `model` the predictor's nodes serve (None for one not pinned)."""
    return {version for name, version in _references(predictor) if name == model}


def _references(predictor: Predictor) -> list[tuple[str, str | None]]:
    found = []
    for node in _nodes(predictor.get("graph")):
        uri = node.get("modelUri")
        if isinstance(uri, str) and uri.startswith("models:/"):
            try:
                reference = mlflow_registry.parse(uri)
            except DaneelError:
                continue
            found.append((reference.name, reference.version))
    return found


def _nodes(node: Any) -> list[dict[str, Any]]:
    if not isinstance(node, dict):
        return []
    children = node.get("children")
    return [node, *(n for child in (children if isinstance(children, list) else []) for n in _nodes(child))]


def _retarget(predictor: Predictor, reference: mlflow_registry.Reference, rename: bool = False) -> Predictor:
    """`predictor` with every node serving the model pointed at `reference`'s version, and named after it
    when `rename` is set or its name is that of the version it served."""
    before = _versions(predictor, reference.name)
    for node in _nodes(predictor.get("graph")):
        uri = node.get("modelUri")
        if isinstance(uri, str) and uri.startswith("models:/") and mlflow_registry.parse(uri).name == reference.name:
            node["modelUri"] = reference.uri
    if rename or (len(before) == 1 and predictor.get("name") == f"v{before.pop()}"):
        predictor["name"] = f"v{reference.version}"
    return predictor


def _read(path: Path) -> Document:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DaneelError(f"{path}: cannot read it: {exc}") from exc
    except yaml.YAMLError as exc:
        raise DaneelError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(document, dict):
        raise DaneelError(f"{path}: expected a deployment (a mapping with apiVersion, kind, metadata and spec)")
    return document


def _write(path: Path, document: Document) -> None:
    """Validate the new text as `daneel validate` would (beside the file, so relative paths hold), then
    put it in place."""
    staged = path.with_name(f".{path.name}.deploy-mlflow")
    staged.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    try:
        load(staged)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def _dns_name(name: str) -> str:
    """A registered model's name as Kubernetes names objects: lower case, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63] or "model"
