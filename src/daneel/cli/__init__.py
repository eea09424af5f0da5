"""The `daneel` command."""
