"""Names and labels of the objects a deployment renders to, valid however its parts are spelt.

Kubernetes wants object names that are DNS labels (lower case, digits and `-`, at
most 63 characters, starting with a letter for Services) and label values of at
most 63 characters. Deployment, predictor and node names come from the user, so
they are folded into that alphabet; a name that would run over the limit keeps
its start and ends with a hash of the whole, so two long names never collide.
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 63
_INVALID = re.compile(r"[^a-z0-9-]+")
_LABEL_INVALID = re.compile(r"[^A-Za-z0-9._-]+")

#: Labels on every object; the selector labels are the last two plus `COMPONENT`.
NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
COMPONENT_LABEL = "app.kubernetes.io/component"
DEPLOYMENT_LABEL = "daneel.dev/deployment"
PREDICTOR_LABEL = "daneel.dev/predictor"
NODE_LABEL = "daneel.dev/node"
APP = "daneel"


def object_name(*parts: str) -> str:
    """`parts` joined by `-` as a DNS label: `iris-abtest-main`."""
    text = _INVALID.sub("-", "-".join(parts).lower()).strip("-") or "x"
    if not text[0].isalpha():
        text = f"d-{text}"
    return _shortened(text, MAX_NAME, "-")


def label_value(value: str) -> str:
    """`value` as a label value: letters, digits, `-`, `_`, `.`, at most 63, alphanumeric at both ends."""
    text = _LABEL_INVALID.sub("-", value).strip("-_.")
    return _shortened(text, MAX_NAME, "-").strip("-_.")


def _shortened(text: str, limit: int, joiner: str) -> str:
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[: limit - len(digest) - 1].rstrip('-_.')}{joiner}{digest}"


def selector(deployment: str, component: str, predictor: str | None = None, node: str | None = None) -> dict[str, str]:
    """The labels that pick the pods of one Deployment; its pods carry them all."""
    labels = {DEPLOYMENT_LABEL: label_value(deployment), COMPONENT_LABEL: component}
    if predictor is not None:
        labels[PREDICTOR_LABEL] = label_value(predictor)
    if node is not None:
        labels[NODE_LABEL] = label_value(node)
    return labels


def labels(deployment: str, component: str, predictor: str | None = None, node: str | None = None) -> dict[str, str]:
    """Every label of an object: the common ones, then its selector's."""
    return {NAME_LABEL: APP, MANAGED_BY_LABEL: APP, **selector(deployment, component, predictor, node)}
