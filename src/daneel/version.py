__version__ = "0.1.0"

#: The image `daneel manifest` runs and `daneel build` builds on (deploy/Dockerfile makes it).
RUNTIME_IMAGE = f"ghcr.io/daneel-ml/daneel:{__version__}"
