"""`daneel validate`, `daneel convert` and `daneel schema`: deployment files without serving them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from daneel.errors import DaneelError
from daneel.spec import Deployment, Node, as_model_deployment, image_nodes, json_schema, load
from daneel.spec.model import Detector, DetectorAction, DetectorKind


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--components",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder holding, for each node that names only a container image, a folder of its name.",
)
def validate(file: Path, components: Path | None) -> None:
    """Check deployment FILE and summarise its predictors.

    Problems go to stderr, one a line: FILE:LINE: field: what was expected.
    """
    try:
        deployment = load(file, components)
    except DaneelError as exc:
        _fail(exc)
    click.echo(summary(deployment, components))


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
def convert(file: Path, output: Path | None) -> None:
    """Print SeldonDeployment FILE as a daneel ModelDeployment.

    The spec is kept as it is; status is dropped.
    """
    try:
        text = file.read_text(encoding="utf-8")
        converted = _yaml(as_model_deployment(text, str(file)))
    except DaneelError as exc:
        _fail(exc)
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{file}: cannot read it: {exc}") from None
    if output is None:
        click.echo(converted, nl=False)
    else:
        output.write_text(converted, encoding="utf-8")


@click.command()
@click.option("--crd", "as_crd", is_flag=True, help="A Kubernetes CustomResourceDefinition (YAML) instead.")
def schema(as_crd: bool) -> None:
    """Print the JSON Schema of deployment files, or their Kubernetes CRD."""
    if as_crd:
        from daneel.k8s import crd, yamltext  # Kubernetes' part of daneel: only for this flag

        click.echo(yamltext.dump(crd.crd()), nl=False)
    else:
        click.echo(json.dumps(json_schema(), indent=2))


def summary(deployment: Deployment, components: Path | None = None) -> str:
    """A line per predictor: name, share of traffic (or shadow), and its graph."""
    traffic = deployment.traffic()
    predictors = deployment.spec.predictors
    count = f"{len(predictors)} predictor{'s' if len(predictors) != 1 else ''}"
    lines = [f"{deployment.name}: a valid {deployment.kind} with {count}"]
    width = max(len(p.name) for p in predictors)
    for predictor in predictors:
        share = "shadow" if predictor.shadow else f"{traffic[predictor.name]}%"
        lines.append(f"  {predictor.name:<{width}}  {share:>6}  {outline(predictor.graph)}")
        watched = [(predictor.name, predictor.detectors)] + [(n.name, n.detectors) for n in predictor.graph.walk()]
        described = [f"{_detector(d)} on {where}" for where, detectors in watched for d in detectors]
        if described:
            lines.append(f"  {'':<{width}}  {'':>6}  detectors: {'; '.join(described)}")
    if components is None:
        lines += [_note(node) for node in dict.fromkeys(node.name for _, node in image_nodes(deployment))]
    return "\n".join(lines)


def _detector(detector: Detector) -> str:
    """`odd (outlier, reject)`: the name, the kind, and what is not the kind's default."""
    notes = [detector.kind.value]
    if detector.kind is DetectorKind.OUTLIER and not detector.synchronous:
        notes.append("async")
    if detector.action is DetectorAction.REJECT:
        notes.append("reject")
    return f"{detector.name} ({', '.join(notes)})"


def outline(node: Node) -> str:
    """A graph on one line: `a -> b -> (c, d)`."""
    if not node.children:
        return node.name
    if len(node.children) == 1:
        return f"{node.name} -> {outline(node.children[0])}"
    return f"{node.name} -> ({', '.join(outline(child) for child in node.children)})"


def _note(name: str) -> str:
    return f"note: {name} names only a container image; to serve it here, pass --components DIR with DIR/{name}"


def _fail(exc: DaneelError) -> Any:
    click.echo(exc.message, err=True)
    sys.exit(1)


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
