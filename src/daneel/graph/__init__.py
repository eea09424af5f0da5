"""Inference graphs: the executor, built-in routers and combiners, and remote nodes."""
