# daneel's runtime images for components in other languages (daneel.version.LANGUAGE_IMAGES): the runtime
# image (deploy/Dockerfile) with Node.js and npm, or with a JDK, which `daneel serve` runs a Node.js or Java
# component with and `daneel build` builds such a component's image on. From the repository root:
#
#   docker build -f deploy/languages.Dockerfile --build-arg PACKAGES="nodejs npm" \
#       -t ghcr.io/daneel-ml/daneel:0.1.0-nodejs deploy
#   docker build -f deploy/languages.Dockerfile --build-arg PACKAGES=default-jdk-headless \
#       -t ghcr.io/daneel-ml/daneel:0.1.0-java deploy
#
# A JDK, not only a JRE: `daneel build` compiles a Java component's sources in the image, and `daneel serve`
# compiles daneel's own small Java side at first use.
ARG BASE=ghcr.io/daneel-ml/daneel:0.1.0
FROM ${BASE}

ARG PACKAGES
USER root
RUN test -n "${PACKAGES}" \
    && apt-get update \
    && apt-get install -y --no-install-recommends ${PACKAGES} \
    && rm -rf /var/lib/apt/lists/*
USER 1000:1000
