#!/usr/bin/env bash
# Smoke-test a built avzsl image.
#
#   docker/smoke.sh IMAGE [WORKDIR]
#
# Runs docker/smoke_inside.py in the container as the image's non-root user with WORKDIR/cache bind-mounted
# on /cache and WORKDIR/runs on /runs (WORKDIR defaults to a new temporary directory, kept for inspection),
# with `--network none`: the demo (generate, extract, train, evaluate, predict on the packaged encoders) needs
# no network. Then, on the host: the files the container wrote belong to the image's user id; the image's
# default command (`avzsl-extract --help`) works; and, when the image has `avzsl-app`, the page serves on
# 127.0.0.1 (`--network host`) for the demo's run (reported "skipped: avzsl-app not in this image" otherwise).
#
# Environment: AVZSL_SMOKE_DEMO=0 skips `avzsl-demo --out /runs/demo` (and with it the page check, which needs
# its run); AVZSL_SMOKE_GPU=1 runs the container with `--gpus all` and requires torch to see a GPU;
# AVZSL_SMOKE_APP_PORT (default: a free port) and AVZSL_SMOKE_APP_TIMEOUT (seconds for the page to answer, 300).
# Exit status: 0 when every check passed.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 IMAGE [WORKDIR]" >&2
    exit 2
fi
image=$1
workdir=${2:-$(mktemp -d "${TMPDIR:-/tmp}/avzsl-smoke.XXXXXX")}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
smoke_start=$SECONDS
app_container=""
# shellcheck disable=SC2317  # called by the EXIT trap, which shellcheck does not follow
cleanup() {
    if [[ -n "$app_container" ]]; then docker rm -f -v "$app_container" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

docker image inspect "$image" >/dev/null
image_uid=$(docker run --rm --network none "$image" id -u)
image_gid=$(docker run --rm --network none "$image" id -g)
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
inside_start=$SECONDS
docker run --rm -i --network none "${gpu_args[@]}" \
    -e AVZSL_SMOKE_DEMO="${AVZSL_SMOKE_DEMO:-1}" \
    -v "$workdir/cache:/cache" -v "$workdir/runs:/runs" \
    "$image" python - <"$here/smoke_inside.py" || status=1
echo "     checks inside the container (--network none): $((SECONDS - inside_start)) s"

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

if docker run --rm --network none "$image" sh -c 'command -v avzsl-extract' >/dev/null; then
    if docker run --rm --network none "$image" >/dev/null; then
        echo "ok   default command (avzsl-extract --help)"
    else
        echo "FAIL default command (avzsl-extract --help)" >&2
        status=1
    fi
else
    echo "SKIP default command: avzsl-extract is not in this build yet"
fi

# The page: `avzsl-app` on the demo's run, bound to the default 127.0.0.1 of the host's network namespace
# (--network host), fetched once from inside the container (status 200, an HTML page) and once from the host
# (the port answers on the host's loopback).
app_run=/runs/demo/run
if ! docker run --rm --network none "$image" sh -c 'command -v avzsl-app' >/dev/null; then
    echo "SKIP avzsl-app: skipped: avzsl-app not in this image"
elif [[ ! -f "$workdir/runs/demo/run/metrics.json" ]]; then
    echo "SKIP avzsl-app: no demo run to serve (AVZSL_SMOKE_DEMO=0 or the demo failed)"
else
    port=${AVZSL_SMOKE_APP_PORT:-$(docker run --rm --network host "$image" python -c \
        'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
    app_container="avzsl-smoke-app-$$"
    app_start=$SECONDS
    docker run -d --name "$app_container" --network host -v "$workdir/cache:/cache" -v "$workdir/runs:/runs" \
        "$image" avzsl-app --run "$app_run" --port "$port" >/dev/null
    answered=""
    while (( SECONDS - app_start < ${AVZSL_SMOKE_APP_TIMEOUT:-300} )); do
        if [[ "$(docker inspect --format '{{.State.Running}}' "$app_container")" != true ]]; then
            break
        fi
        if answered=$(docker exec "$app_container" python -c '
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=10) as response:
    body = response.read().decode("utf-8", "replace")
assert response.status == 200 and "<html" in body.lower(), (response.status, body[:200])
print(f"HTTP {response.status}, {len(body)} characters of HTML")
' "$port" 2>/dev/null); then
            break
        fi
        answered=""
        sleep 2
    done
    # The host side: a plain TCP connection to 127.0.0.1:PORT (bash's /dev/tcp; no client needed on the host).
    if [[ -n "$answered" ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "ok   avzsl-app --run $app_run on 127.0.0.1:$port (--network host) answered after" \
            "$((SECONDS - app_start)) s: $answered; reachable from the host"
    else
        echo "FAIL avzsl-app --run $app_run on 127.0.0.1:$port did not answer within" \
            "${AVZSL_SMOKE_APP_TIMEOUT:-300} s; its log:" >&2
        docker logs --tail 40 "$app_container" >&2 || true
        status=1
    fi
    docker rm -f -v "$app_container" >/dev/null
    app_container=""
fi

echo "     whole smoke run: $((SECONDS - smoke_start)) s"
if [[ $status == 0 ]]; then
    echo "smoke: all checks passed ($image)"
else
    echo "smoke: FAILED ($image); files kept in $workdir" >&2
fi
exit $status
