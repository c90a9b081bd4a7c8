#!/usr/bin/env bash
# Build and smoke-test the avzsl image on a machine that cannot pull from an image registry.
#
#   docker/build_local_base.sh [--rebuild-base] [--no-smoke]
#
# 1. Base image without `docker pull`: debootstrap a minimal Debian 12 (bookworm) root file system from the
#    Debian package mirror and `docker import` it as $AVZSL_BASE_IMAGE. Like the default CUDA base, it has no
#    Python, so the Dockerfile's apt branch (python3 + venv) is the one exercised. The host's extra CA
#    certificates (/usr/local/share/ca-certificates) are copied in, because on machines whose HTTPS egress
#    goes through an intercepting proxy pip cannot reach PyPI otherwise; this only affects the local base.
#    Needs root and `debootstrap` (apt-get install debootstrap); done once, reused afterwards.
# 2. Local pip mirrors: each `file://DIR/simple` index in the host's pip configuration (e.g. /opt/pypi) is
#    served over HTTP on 127.0.0.1 for the duration of the build and passed as PIP_EXTRA_INDEX_URL, so the
#    large torch/CUDA wheels come from local disk instead of a multi-GB download. Override the list with
#    AVZSL_PIP_MIRRORS="DIR ..." (directories that contain simple/), or set it to "none".
# 3. `docker build --network host --build-arg BASE_IMAGE=$AVZSL_BASE_IMAGE` of the real Dockerfile, as
#    $AVZSL_IMAGE, for the invoking user's ids (1000 when invoked as root: the image must not run as root).
# 4. docker/smoke.sh $AVZSL_IMAGE (skip with --no-smoke).
#
# Environment: AVZSL_BASE_IMAGE (avzsl-local-base:bookworm), AVZSL_IMAGE (avzsl:local),
# AVZSL_DEBIAN_MIRROR (http://deb.debian.org/debian), AVZSL_PIP_MIRRORS, AVZSL_MIRROR_PORT (37651),
# EXTRAS (pyproject extras to add), USER_ID / GROUP_ID.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
base_image=${AVZSL_BASE_IMAGE:-avzsl-local-base:bookworm}
image=${AVZSL_IMAGE:-avzsl:local}
debian_mirror=${AVZSL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
rebuild_base=0
smoke=1
for arg in "$@"; do
    case $arg in
        --rebuild-base) rebuild_base=1 ;;
        --no-smoke) smoke=0 ;;
        *) echo "usage: $0 [--rebuild-base] [--no-smoke]" >&2; exit 2 ;;
    esac
done

if [[ "$(id -u)" == 0 ]]; then default_uid=1000 default_gid=1000; else default_uid=$(id -u) default_gid=$(id -g); fi
user_id=${USER_ID:-$default_uid}
group_id=${GROUP_ID:-$default_gid}

docker version --format 'docker engine {{.Server.Version}}' || {
    echo "no Docker engine answers (start one: dockerd &)" >&2
    exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/avzsl-docker.XXXXXX")
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- 1. local base image ---------------------------------------------------------------------------------
if [[ $rebuild_base == 1 ]] || ! docker image inspect "$base_image" >/dev/null 2>&1; then
    if [[ "$(id -u)" != 0 ]] || ! command -v debootstrap >/dev/null; then
        echo "building $base_image needs root and debootstrap (apt-get install debootstrap)" >&2
        exit 1
    fi
    rootfs="$tmp/rootfs"
    echo "debootstrap bookworm (minbase) from $debian_mirror"
    debootstrap --variant=minbase bookworm "$rootfs" "$debian_mirror" >"$tmp/debootstrap.log" 2>&1 || {
        tail -20 "$tmp/debootstrap.log" >&2
        exit 1
    }
    shopt -s nullglob
    extra_certs=(/usr/local/share/ca-certificates/*.crt)
    shopt -u nullglob
    if [[ ${#extra_certs[@]} -gt 0 ]]; then
        mkdir -p "$rootfs/usr/local/share/ca-certificates"
        cp "${extra_certs[@]}" "$rootfs/usr/local/share/ca-certificates/"
        echo "copied ${#extra_certs[@]} extra CA certificate(s) into the base"
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" --numeric-owner -c . | docker import --change 'CMD ["/bin/bash"]' - "$base_image" >/dev/null
    rm -rf "$rootfs"
    echo "imported $base_image"
fi

# --- 2. local pip mirrors over HTTP ----------------------------------------------------------------------
if [[ -z "${AVZSL_PIP_MIRRORS+set}" ]]; then
    # file:// indexes of the host's pip configuration, e.g. "file:///opt/pypi/simple" -> /opt/pypi
    AVZSL_PIP_MIRRORS=$(python3 -m pip config list 2>/dev/null \
        | grep -oE "file://[^ ']+/simple/?" | sed -E 's#^file://##; s#/simple/?$##' | sort -u | tr '\n' ' ' || true)
fi
# PIP_CERT: the base's system CA bundle, which update-ca-certificates (run when the Dockerfile installs
# ca-certificates) builds from Debian's CAs plus the extra certificates copied into the base in step 1.
build_args=(--build-arg "BASE_IMAGE=$base_image" --build-arg "USER_ID=$user_id" --build-arg "GROUP_ID=$group_id"
            --build-arg "PIP_CERT=/etc/ssl/certs/ca-certificates.crt")
# EXTRAS only when set: unset, the Dockerfile's default (the demo's encoders, the page) applies.
if [[ -n "${EXTRAS+set}" ]]; then build_args+=(--build-arg "EXTRAS=$EXTRAS"); fi
mirror_urls=()
if [[ "${AVZSL_PIP_MIRRORS:-none}" != none ]]; then
    mkdir "$tmp/mirrors"
    i=0
    for dir in $AVZSL_PIP_MIRRORS; do
        if [[ -d "$dir/simple" ]]; then
            ln -s "$dir" "$tmp/mirrors/m$i"
            mirror_urls+=("m$i")
            i=$((i + 1))
        fi
    done
fi
if [[ ${#mirror_urls[@]} -gt 0 ]]; then
    # A fixed port keeps PIP_EXTRA_INDEX_URL, a build argument, identical between builds: a changed build
    # argument would invalidate Docker's cache of the multi-GB dependency layer.
    port=${AVZSL_MIRROR_PORT:-37651}
    if ! python3 -c "import socket, sys; socket.socket().bind(('127.0.0.1', int(sys.argv[1])))" "$port" 2>/dev/null; then
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        echo "warning: mirror port busy, using $port (the cached dependency layer will not be reused)" >&2
    fi
    python3 -m http.server --bind 127.0.0.1 --directory "$tmp/mirrors" "$port" >"$tmp/http.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 50); do
        if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null; then
            break
        fi
        sleep 0.2
    done
    urls=""
    for m in "${mirror_urls[@]}"; do urls+="http://127.0.0.1:$port/$m/simple "; done
    echo "serving local pip mirrors (${AVZSL_PIP_MIRRORS% }) at ${urls% }"
    build_args+=(--build-arg "PIP_EXTRA_INDEX_URL=${urls% }" --build-arg "PIP_TRUSTED_HOST=127.0.0.1")
fi

# --- 3. the real Dockerfile on the local base ------------------------------------------------------------
# BuildKit when the client has it: a docker CLI >= 23 builds with BuildKit only through its buildx plugin (without
# it, DOCKER_BUILDKIT=1 is an error and the deprecated classic builder runs); an older CLI (Debian 12's docker.io,
# 20.10) uses the engine's built-in BuildKit when DOCKER_BUILDKIT=1. AVZSL_DOCKER_CLI picks another client binary.
docker_cli=${AVZSL_DOCKER_CLI:-docker}
client_major=$("$docker_cli" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)
if "$docker_cli" buildx version >/dev/null 2>&1; then
    builder="BuildKit (buildx)"
    export DOCKER_BUILDKIT=1
elif [[ "$client_major" =~ ^[0-9]+$ && "$client_major" -lt 23 ]]; then
    builder="BuildKit (engine built-in, client $client_major)"
    export DOCKER_BUILDKIT=1
else
    builder="classic builder (no buildx plugin for docker CLI $client_major; AVZSL_DOCKER_CLI=/usr/bin/docker picks Debian's 20.10 client, which has BuildKit)"
    export DOCKER_BUILDKIT=0
fi
echo "docker build -t $image (BASE_IMAGE=$base_image USER_ID=$user_id GROUP_ID=$group_id EXTRAS=${EXTRAS-(default)}; $builder)"
start=$SECONDS
"$docker_cli" build --network host "${build_args[@]}" -t "$image" "$repo"
echo "built $image in $((SECONDS - start)) s: $(docker image inspect --format '{{.Size}}' "$image") bytes"

# --- 4. smoke test ---------------------------------------------------------------------------------------
if [[ $smoke == 1 ]]; then
    "$repo/docker/smoke.sh" "$image"
fi
