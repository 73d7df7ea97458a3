# syntax=docker/dockerfile:1
# The controller image: `docker build -t reconciler .` then `docker run reconciler controller --help`.
# Two stages: the first builds reconciler's wheel and installs it with exactly the pinned dependencies of
# constraints.txt (`make constraints`) into a virtualenv; the second copies that virtualenv onto a slim Python
# with the git binary and a non-root user (UID 10001, the chart's runAsUser). No compiler, pip or build tool
# is left in the image.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY constraints.txt ./
RUN python -m venv /opt/reconciler \
 && /opt/reconciler/bin/pip install --only-binary=:all: --no-deps --requirement constraints.txt
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/reconciler/bin/pip install --no-deps /wheels/reconciler-*.whl \
 && /opt/reconciler/bin/pip check \
 && /opt/reconciler/bin/python -m pip uninstall --yes pip setuptools wheel \
 && /opt/reconciler/bin/python -m compileall -q /opt/reconciler

FROM python:${PYTHON_VERSION}-slim-bookworm
RUN apt-get update \
 && apt-get install --yes --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python -m pip uninstall --yes pip setuptools wheel \
 && groupadd --system --gid 10001 reconciler \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/reconciler --create-home \
      --shell /usr/sbin/nologin reconciler \
 && install -d -o 10001 -g 10001 /var/cache/reconciler
COPY --from=build /opt/reconciler /opt/reconciler
ENV PATH=/opt/reconciler/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/reconciler \
    RECONCILER_CACHE_DIR=/var/cache/reconciler
USER 10001:10001
WORKDIR /home/reconciler
EXPOSE 8080
ENTRYPOINT ["reconcile"]
CMD ["controller"]
