"""Transport-neutral serving: models' states, inference, feedback, metadata and health."""
