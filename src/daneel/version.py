__version__ = "0.1.0"

#: The image `daneel manifest` runs and `daneel build` builds on (deploy/Dockerfile makes it).
RUNTIME_IMAGE = f"ghcr.io/daneel-ml/daneel:{__version__}"

#: The runtime images of components in other languages: RUNTIME_IMAGE with Node.js and npm, or with a JDK
#: (deploy/languages.Dockerfile makes them).
LANGUAGE_IMAGES = {"nodejs": f"{RUNTIME_IMAGE}-nodejs", "java": f"{RUNTIME_IMAGE}-java"}


def runtime_image(language: str) -> str:
    """The image that serves a component in `language` ("python", "nodejs" or "java")."""
    return LANGUAGE_IMAGES.get(language, RUNTIME_IMAGE)
