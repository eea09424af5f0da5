"""Kubernetes: the ModelDeployment CRD, the objects a deployment renders to, and the operator."""
