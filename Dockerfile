# syntax=docker/dockerfile:1
# One image for every service: `up --services <name>` picks the service, `migrate` runs the
# migrations, and every other `clustergov` subcommand (dlq, replay, token) works the same way.
# Pin the base by digest in your registry mirror; the tag below is the version tested.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# -- build: a virtualenv with the pinned dependencies and the project, nothing else ------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/clustergov
# Dependencies first (exact pins from pyproject.toml), so a code change reuses this layer.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && /opt/clustergov/bin/pip install --no-cache-dir --requirement requirements.txt
COPY shared ./shared
COPY services ./services
RUN /opt/clustergov/bin/pip install --no-cache-dir --no-deps . \
 && /opt/clustergov/bin/python -m compileall -q /opt/clustergov/lib

# -- runtime: the virtualenv on a slim Python, a numeric non-root user, a read-only root -------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="clustergov" \
      org.opencontainers.image.description="Event-sourced platform for district party-alliance clusters" \
      org.opencontainers.image.source="https://github.com/clustergov/clustergov"
COPY --from=build /opt/clustergov /opt/clustergov
# Nothing is written at run time (bytecode is compiled above); /tmp is the one writable path a
# read-only root needs, mounted as a tmpfs or emptyDir by compose and Kubernetes.
ENV PATH=/opt/clustergov/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CLUSTERGOV_HTTP_ADDRESS=0.0.0.0:8000 \
    CLUSTERGOV_VAR_DIR=/tmp/clustergov
WORKDIR /tmp
USER 10001:10001
EXPOSE 8000
# Liveness only: /healthz never touches the broker or the database.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CLUSTERGOV_HTTP_ADDRESS', ':8000').rpartition(':')[2] + '/healthz', timeout=2)"]
# Exec form: clustergov is PID 1 and receives SIGTERM itself; it stops taking work and waits for
# running handlers and requests before it exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["clustergov"]
CMD ["up"]
