"""From a deployment file to one component serving all its predictors.

A deployment travels to worker processes as a :class:`ComponentSpec` whose
implementation is `DEPLOYMENT` and whose path is the file; each worker reads
the file and builds it with :func:`build`, which builds any other spec as the
runtime does. Routers that learn keep their state in the deployment's
`stateStore` (relative to the file), by default a SQLite file per deployment
under the state folder, so that every worker shares it and it outlives a restart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import Executor
from pathlib import Path

from daneel.graph import BuildContext, build_graph, open_store
from daneel.graph.builtins import BUILTINS, Bandit
from daneel.observe.journal import state_dir
from daneel.observe.payloads import Source
from daneel.observe.telemetry import OFF, Telemetry
from daneel.runtime import loader, storage
from daneel.runtime.component import Component
from daneel.spec import Deployment as DeploymentSpec
from daneel.spec import load
from daneel.traffic.deployment import Deployment

DEPLOYMENT = "DEPLOYMENT"
_LEARNING = {name for name, cls in BUILTINS.items() if issubclass(cls, Bandit)}


def deployment_spec(path: Path, deployment: DeploymentSpec, components_dir: Path | None = None) -> loader.ComponentSpec:
    options = {"components_dir": str(components_dir) if components_dir else None}
    return loader.ComponentSpec(deployment.name, DEPLOYMENT, path.resolve(), None, options)


def build(
    spec: loader.ComponentSpec,
    policy: str = "auto",
    executor: Executor | None = None,
    state: str | None = None,
    telemetry: Telemetry = OFF,
) -> Component:
    """A deployment's component from its spec, or any other component as the runtime builds it.

    `state` overrides where routers keep their state (":memory:" to check a file without touching it).
    """
    if spec.implementation != DEPLOYMENT:
        return loader.build(spec, policy, executor, telemetry)
    assert spec.path is not None
    components = spec.parameters.get("components_dir")
    deployment = load(spec.path, Path(components) if components else None)
    context = BuildContext(
        base_dir=deployment.base_dir or spec.path.parent,
        components_dir=deployment.components_dir,
        fetch=storage.fetch,
        policy=policy,
        executor=executor,
        protocol=deployment.spec.protocol or "seldon",
        deployment=deployment.name,
        telemetry=telemetry,
        namespace=deployment.metadata.namespace,
    )
    if _learns(deployment):
        context.state = open_store(state or state_location(deployment))
    return build_deployment(deployment, context)


def build_deployment(deployment: DeploymentSpec, context: BuildContext) -> Deployment:
    payloads = context.telemetry.payloads
    if payloads is not None:  # the data plane logs what the deployment is asked and answers
        source = Source(deployment.name, namespace=context.namespace)
        payloads.deployment_logger(deployment.spec.logger, source, context.base_dir)
    weights = deployment.traffic()
    predictors = [(build_graph(p, context), weights[p.name]) for p in deployment.spec.predictors if not p.shadow]
    shadow = deployment.shadow()
    return Deployment(
        deployment.name,
        predictors,
        build_graph(shadow, context) if shadow else None,
        deployment.spec.sticky,
        state=context.state,
    )


def state_location(deployment: DeploymentSpec, environ: Mapping[str, str] | None = None) -> str:
    """The deployment's `stateStore` (a path relative to its file, or a redis:// URL), else the default file."""
    configured = deployment.spec.state_store
    if configured and "://" in configured:
        return configured
    base = deployment.base_dir or Path.cwd()
    if configured:
        return str(base / configured)
    return str(state_dir(os.environ if environ is None else environ) / f"{deployment.name}.sqlite")


def _learns(deployment: DeploymentSpec) -> bool:
    return any(node.implementation in _LEARNING for node in deployment.nodes())
