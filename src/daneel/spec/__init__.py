"""The deployment file: its schema (a pydantic model) and loading it from YAML."""
