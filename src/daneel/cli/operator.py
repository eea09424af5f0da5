"""`daneel operator`: run the Kubernetes operator that serves ModelDeployment resources."""

from __future__ import annotations

import click

from daneel.version import RUNTIME_IMAGE


@click.command()
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Watch this namespace (repeat; default: all).")
@click.option(
    "--image",
    help=f"Image the daneel pods run (default: {RUNTIME_IMAGE}, or its -nodejs or -java image for a predictor"
    " whose graph has a NODEJS_SERVER or JAVA_SERVER node).",
)
@click.option("--istio/--no-istio", default=False, help="Split traffic with Istio instead of daneel's router.")
@click.option("--pod-monitor", is_flag=True, help="Give every deployment a Prometheus Operator PodMonitor.")
@click.option("--peering", default="daneel", show_default=True, help="kopf peering object shared by the replicas.")
@click.option("--priority", type=int, help="Peering priority; the highest runs, others wait (default: random).")
@click.option("--standalone", is_flag=True, help="Run without peering (a single replica, or development).")
@click.option("--drift-interval", type=click.FloatRange(min=1), default=60.0, show_default=True, help="Seconds.")
@click.option("--liveness", default="http://0.0.0.0:8080/healthz", show_default=True, help="Liveness endpoint.")
def operator(
    namespaces: tuple[str, ...],
    image: str | None,
    istio: bool,
    pod_monitor: bool,
    peering: str,
    priority: int | None,
    standalone: bool,
    drift_interval: float,
    liveness: str,
) -> None:
    """Reconcile ModelDeployments: apply what `daneel manifest` renders, keep their status current."""
    try:
        from daneel.k8s import operator as k8s
    except ImportError as exc:
        raise click.ClickException(f"daneel operator needs the k8s extra: pip install 'daneel[k8s]' ({exc})") from None
    from daneel.k8s.manifests import Options

    options = Options(image=image, istio=istio, pod_monitor=pod_monitor)
    settings = k8s.Settings(options, namespaces, peering, priority, standalone, liveness or None, drift_interval)
    k8s.run(settings)
