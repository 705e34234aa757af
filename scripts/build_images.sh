#!/usr/bin/env bash
# Builds the trainer and serving images (trainer/Dockerfile, serving/Dockerfile; both built from
# the repository root, since both carry sf_contract/ and the serving image also the trainer's
# feature code) and pushes them to your registry.
#
# Usage:
#   REGISTRY=<your-registry>/<project>/<repo> scripts/build_images.sh [--tag TAG] [--no-push]
#
# Prints the two image references to set as the Airflow Variables sf_gcp_trainer_image and
# sf_gcp_serving_image (docs/gcp.md). The tag defaults to the current commit (or a timestamp).
# Authenticate Docker to your registry first (for Artifact Registry: gcloud auth
# configure-docker with your registry's host).
#
# Both images are built for linux/amd64 whatever the host (Vertex AI and Cloud Run run only
# that; an arm64 image from Apple Silicon fails there with "exec format error"), and each is
# checked to be linux/amd64 before it is pushed. .dockerignore keeps the build context to what
# the Dockerfiles copy.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG="" PUSH=1
PLATFORM=linux/amd64
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG="$2"; shift 2 ;;
    --no-push) PUSH=0; shift ;;
    -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
: "${REGISTRY:?set REGISTRY=<your-registry>/<project>/<repo>}"
REGISTRY="${REGISTRY%/}"
if [ -z "$TAG" ]; then
  TAG="$(git rev-parse --short=12 HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)"
fi

for image in trainer serving; do
  [ -f "$image/Dockerfile" ] || { echo "missing $image/Dockerfile" >&2; exit 1; }
done
[ -f sf_contract/__init__.py ] || { echo "missing sf_contract/ (both images copy it)" >&2; exit 1; }

built=()
for image in trainer serving; do
  ref="$REGISTRY/$image:$TAG"
  echo "building $ref from $image/Dockerfile"
  docker build --platform "$PLATFORM" --file "$image/Dockerfile" --tag "$ref" .
  # A builder that ignores --platform (the legacy one without BuildKit) would build for the
  # host: refuse that image rather than push one the jobs cannot run.
  built_for="$(docker image inspect --format '{{.Os}}/{{.Architecture}}' "$ref")"
  if [ "$built_for" != "$PLATFORM" ]; then
    echo "$ref was built for $built_for, not $PLATFORM: use a BuildKit/buildx builder" >&2
    exit 1
  fi
  if [ "$PUSH" = 1 ]; then
    docker push "$ref"
  fi
  built+=("$ref")
done

echo
echo "sf_gcp_trainer_image=${built[0]}"
echo "sf_gcp_serving_image=${built[1]}"
