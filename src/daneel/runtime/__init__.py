"""Components: the node interface, its adapters, and how models are found and loaded."""
