#!/usr/bin/env bash
# Smoke-test a built avzsl image.
#
#   docker/smoke.sh IMAGE [WORKDIR]
#
# Runs docker/smoke_inside.py in the container as the image's non-root user with WORKDIR/cache bind-mounted
# on /cache and WORKDIR/runs on /runs (WORKDIR defaults to a new temporary directory, kept for inspection),
# then checks on the host that the files the container wrote belong to the image's user id, and that the
# image's default command (`avzsl-extract --help`) works once avzsl-extract exists.
#
# Environment: AVZSL_SMOKE_DEMO=0 skips `avzsl-demo --out /runs/demo`; AVZSL_SMOKE_GPU=1 runs the container
# with `--gpus all` and requires torch to see a GPU.
# Exit status: 0 when every check passed.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 IMAGE [WORKDIR]" >&2
    exit 2
fi
image=$1
workdir=${2:-$(mktemp -d "${TMPDIR:-/tmp}/avzsl-smoke.XXXXXX")}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

docker image inspect "$image" >/dev/null
image_uid=$(docker run --rm "$image" id -u)
image_gid=$(docker run --rm "$image" id -g)
echo "image $image runs as uid=$image_uid gid=$image_gid; host workdir $workdir"
if [[ "$image_uid" == 0 ]]; then
    echo "FAIL: the image runs as root" >&2
    exit 1
fi

mkdir -p "$workdir/cache" "$workdir/runs"
if [[ "$(id -u)" == 0 ]]; then
    # Root on the host: hand the mount points to the image's user, as a host user with that id would own them.
    chown "$image_uid:$image_gid" "$workdir/cache" "$workdir/runs"
elif [[ "$(id -u)" != "$image_uid" ]]; then
    echo "FAIL: the image was built for uid $image_uid but you are uid $(id -u);" \
        "rebuild with --build-arg USER_ID=$(id -u) --build-arg GROUP_ID=$(id -g)" >&2
    exit 1
fi

gpu_args=()
if [[ "${AVZSL_SMOKE_GPU:-0}" == 1 ]]; then
    gpu_args=(--gpus all)
fi

status=0
docker run --rm -i "${gpu_args[@]}" \
    -e AVZSL_SMOKE_DEMO="${AVZSL_SMOKE_DEMO:-1}" \
    -v "$workdir/cache:/cache" -v "$workdir/runs:/runs" \
    "$image" python - <"$here/smoke_inside.py" || status=1

probe="$workdir/cache/smoke/probe.h5"
if [[ -f "$probe" && "$(stat -c %u "$probe")" == "$image_uid" ]]; then
    echo "ok   host: $probe is owned by uid $image_uid (bind mount written by the container user)"
else
    echo "FAIL host: $probe missing or not owned by uid $image_uid" >&2
    status=1
fi

if [[ "${AVZSL_SMOKE_GPU:-0}" == 1 ]]; then
    if docker run --rm --gpus all "$image" python -c \
        'import torch; assert torch.cuda.is_available(); print(torch.cuda.get_device_name(0))'; then
        echo "ok   --gpus all: torch sees a GPU"
    else
        echo "FAIL --gpus all: torch sees no GPU" >&2
        status=1
    fi
fi

if docker run --rm "$image" sh -c 'command -v avzsl-extract' >/dev/null; then
    if docker run --rm "$image" >/dev/null; then
        echo "ok   default command (avzsl-extract --help)"
    else
        echo "FAIL default command (avzsl-extract --help)" >&2
        status=1
    fi
else
    echo "SKIP default command: avzsl-extract is not in this build yet"
fi

if [[ $status == 0 ]]; then
    echo "smoke: all checks passed ($image)"
else
    echo "smoke: FAILED ($image); files kept in $workdir" >&2
fi
exit $status
