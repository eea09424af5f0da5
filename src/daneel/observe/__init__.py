"""Metrics, request logging and tracing: what operators see of the requests served."""
