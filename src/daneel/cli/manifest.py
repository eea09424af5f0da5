"""`daneel manifest FILE`: the Kubernetes objects of a deployment, for `kubectl apply -f -` or a GitOps repository."""

from __future__ import annotations

from pathlib import Path

import click

from daneel.errors import DaneelError
from daneel.k8s.manifests import Options
from daneel.k8s.manifests import manifest as render
from daneel.spec import load
from daneel.version import RUNTIME_IMAGE


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-n", "--namespace", help="Namespace of every object (default: the file's, else kubectl's).")
@click.option(
    "--image",
    help=f"Image the daneel pods run (default: {RUNTIME_IMAGE}, or its -nodejs or -java image for a predictor"
    " whose graph holds a Node.js or Java node).",
)
@click.option("--istio/--no-istio", default=False, help="Split traffic with an Istio VirtualService (default: router).")
@click.option("--pod-monitor", is_flag=True, help="Add a Prometheus Operator PodMonitor.")
@click.option("--router-replicas", type=click.IntRange(min=1), default=1, show_default=True, help="Router pods.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
def manifest(
    file: Path,
    namespace: str | None,
    image: str | None,
    istio: bool,
    pod_monitor: bool,
    router_replicas: int,
    output: Path | None,
) -> None:
    """Print the Kubernetes objects of deployment FILE as YAML (daneel or Seldon format).

    A local modelUri names files inside the image: run this from the folder that
    `daneel build` copies into the image (/app), and pass that image with --image.
    """
    options = Options(namespace, image, istio, pod_monitor, router_replicas, workdir=Path.cwd())
    try:
        text = render(load(file), options)
    except DaneelError as exc:
        raise click.ClickException(exc.message) from None
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
