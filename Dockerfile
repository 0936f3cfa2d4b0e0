# auth0-rotator operator image: `auth0-rotator run` as a non-root user,
# compatible with a read-only root filesystem.

# --- build: a wheel and its dependencies in a virtualenv ---------------------
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY operator ./operator
RUN python -m venv /opt/auth0-rotator \
 && /opt/auth0-rotator/bin/pip install --constraint constraints.txt . \
 && /opt/auth0-rotator/bin/pip uninstall --yes pip setuptools

# --- runtime: only the virtualenv, no compilers, no caches -------------------
FROM python:3.11.14-slim-bookworm
ENV PATH=/opt/auth0-rotator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/auth0-rotator /opt/auth0-rotator
USER 65532:65532
ENTRYPOINT ["auth0-rotator"]
CMD ["run"]
