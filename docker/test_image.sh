#!/usr/bin/env bash
# Builds the project's image on a locally made Debian bookworm base (no Docker Hub needed)
# and runs the test suite in it as the image's non-root user:
#
#   docker/test_image.sh                 # pytest -x -q
#   docker/test_image.sh -k lrn -v       # other pytest arguments
#
# Steps: install docker.io/debootstrap if missing (root, apt), start dockerd if none answers
# (and stop it again at the end), make the base with docker/build_local_base.sh unless it
# exists, build the image with BASE_IMAGE set to it, run `python train.py --help` (the
# image's default command) and `python -m pytest` in it. Prints how long each step took.
# Environment:
#   BASE_IMAGE  base to build from (default alexnet-tf-base:bookworm, made if missing)
#   IMAGE       tag for the built image (default alexnet-tf:test)
#   REBUILD_BASE=1  make the base again even if it exists
set -euo pipefail
cd "$(dirname "$0")/.."

base=${BASE_IMAGE:-alexnet-tf-base:bookworm}
image=${IMAGE:-alexnet-tf:test}
pytest_args=("$@")
[[ ${#pytest_args[@]} -gt 0 ]] || pytest_args=(-x -q)

step_start=$SECONDS
step() {
  echo "test_image.sh: $1 took $((SECONDS - step_start)) s"
  step_start=$SECONDS
}

missing=()
command -v docker >/dev/null || missing+=(docker.io)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "test_image.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "test_image.sh: needs ${missing[*]} (install them, or run as root with apt-get)" >&2
    exit 1
  fi
fi

dockerd_pid=
# shellcheck disable=SC2317  # called by the EXIT trap
stop_dockerd() {
  if [[ -n $dockerd_pid ]]; then
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
}
trap stop_dockerd EXIT
if ! docker info >/dev/null 2>&1; then
  log=${TMPDIR:-/tmp}/alexnet-tf-dockerd.log
  echo "test_image.sh: no Docker daemon answers; starting dockerd (log: $log)"
  dockerd >"$log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "test_image.sh: dockerd did not start, see $log" >&2; exit 1; }
fi
step "docker daemon"

if [[ ${REBUILD_BASE:-0} == 1 ]] || ! docker image inspect "$base" >/dev/null 2>&1; then
  docker/build_local_base.sh "$base"
  step "base image $base"
fi

docker build --build-arg BASE_IMAGE="$base" --build-arg FLAVOUR=cpu -t "$image" .
step "image build $image"

# Both checks run even if the first fails; the script fails if either did.
status=0
docker run --rm "$image" id
# The default command, python train.py --help: it must exit 0 and print the flags.
usage_status=0
usage=$(docker run --rm "$image" 2>&1) || usage_status=$?
echo "$usage"
if [[ $usage_status != 0 ]] || ! grep -q -- "--data_dir" <<<"$usage" \
    || grep -q "^Traceback" <<<"$usage"; then
  status=1
  echo "test_image.sh: the image's default command did not print train.py's usage" >&2
fi
step "default command (train.py --help)"

docker run --rm --shm-size=1g "$image" python -m pytest "${pytest_args[@]}" || status=$?
step "tests in the image"
exit "$status"
