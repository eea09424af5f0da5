"""Transports: a thin REST edge over the data plane, and the process that runs it."""
