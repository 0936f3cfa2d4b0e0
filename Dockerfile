# auth0-rotator operator image: `auth0-rotator run` as a non-root numeric user,
# for a read-only root filesystem (the chart mounts /tmp as an emptyDir).
#
# There is no Docker engine in CI: tests/packaging/test_dockerfile.py lints this
# file with hadolint and replays the build stage on the test machine, with the
# WORKDIR and the virtualenv's path moved to temporary directories. A RUN that
# writes to any other absolute path would write there on that machine.

# --- base: the one interpreter both stages use -------------------------------
# A virtualenv is not relocatable and links to its interpreter, so it is built
# and run by the same image at the same path. Pinned by exact tag; add the
# digest (python:3.11.14-slim-bookworm@sha256:...) where the registry can be
# reached to resolve and verify it (this file was written offline).
FROM python:3.11.14-slim-bookworm AS base
ENV VIRTUAL_ENV=/opt/auth0-rotator
ENV PATH="${VIRTUAL_ENV}/bin:${PATH}"

# --- build: the package and its dependencies in a virtualenv -----------------
FROM base AS build
# PIP_CONSTRAINT (unlike --constraint) also reaches pip's isolated build
# environment, so the build backend is pinned too.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CONSTRAINT=/src/constraints.txt
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY operator ./operator
# pip and setuptools are only needed to install; the image never installs again.
# Bytecode is compiled once here, unchecked against source timestamps (COPY and
# layer exports may not keep them): with a read-only filesystem and
# PYTHONDONTWRITEBYTECODE, missing or stale bytecode is recompiled at every
# start. -f, because pip itself imports attrs (rich probes for it) and leaves
# timestamp-checked bytecode behind.
RUN python -m venv "$VIRTUAL_ENV" \
 && "$VIRTUAL_ENV/bin/pip" install --no-compile . \
 && "$VIRTUAL_ENV/bin/pip" uninstall --yes pip setuptools \
 && "$VIRTUAL_ENV/bin/python" -m compileall -q -f -j 0 --invalidation-mode unchecked-hash \
      "$VIRTUAL_ENV"

# --- runtime: the interpreter and the virtualenv, nothing else ---------------
FROM base
LABEL org.opencontainers.image.title="auth0-rotator" \
      org.opencontainers.image.description="Kubernetes operator that rotates Auth0 application client secrets and restarts the workloads using them." \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The base image ships the standard library without bytecode; compile it the
# same way, or every start would compile asyncio, ssl, email... in memory.
RUN python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
      -x '/(site-packages|idlelib|tkinter|turtledemo|lib2to3|ensurepip)/' \
      "$(python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"
COPY --from=build /opt/auth0-rotator /opt/auth0-rotator
USER 65532:65532
ENTRYPOINT ["auth0-rotator"]
CMD ["run"]
