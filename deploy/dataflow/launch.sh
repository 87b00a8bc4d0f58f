#!/usr/bin/env bash
# Build the worker and template images, register the Flex Template and launch one run of it.
#   deploy/dataflow/launch.sh PROJECT REGION BUCKET INPUT [SETTINGS]
# e.g. deploy/dataflow/launch.sh my-project us-central1 my-bucket 'gs://my-bucket/crawl/*.warc.gz' \
#        'download.threads=128;clip.enabled=true'
# Needs docker and gcloud (authenticated), an Artifact Registry Docker repository named altcap in REGION
# (gcloud artifacts repositories create altcap --repository-format=docker --location=REGION) and the bucket.
# TORCH=cuda builds the GPU worker image; its GPUs are asked for with ACCELERATOR, e.g.
#   TORCH=cuda ACCELERATOR='type:nvidia-l4;count:1;install-nvidia-driver' deploy/dataflow/launch.sh ...
# Run from the repository root. Not run where it was written (no Docker engine or cloud account there).
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,4p' "$0" >&2
  exit 2
fi
PROJECT=$1 REGION=$2 BUCKET=$3 INPUT=$4 SETTINGS=${5:-}
TORCH=${TORCH:-cpu} TAG=${TAG:-0.1} MAX_WORKERS=${MAX_WORKERS:-50}
REGISTRY=$REGION-docker.pkg.dev/$PROJECT/altcap
WORKER=$REGISTRY/altcap-worker-$TORCH:$TAG
TEMPLATE_IMAGE=$REGISTRY/altcap-template-$TORCH:$TAG
SPEC=gs://$BUCKET/templates/altcap-$TORCH-$TAG.json

docker build -f deploy/Dockerfile --build-arg TORCH="$TORCH" -t "$WORKER" .
docker build -f deploy/dataflow/Dockerfile --build-arg WORKER_IMAGE="$WORKER" -t "$TEMPLATE_IMAGE" .
docker push "$WORKER"
docker push "$TEMPLATE_IMAGE"

gcloud dataflow flex-template build "$SPEC" --project "$PROJECT" \
  --image "$TEMPLATE_IMAGE" --sdk-language PYTHON --metadata-file deploy/dataflow/metadata.json

# Parameters hold ';'-separated lists and settings with commas: gcloud's ^~^ sets '~' as their separator.
PARAMETERS="^~^input=$INPUT~output=gs://$BUCKET/out~sdk_container_image=$WORKER"
if [ -n "$SETTINGS" ]; then PARAMETERS="$PARAMETERS~set=$SETTINGS"; fi
if [ -n "${ACCELERATOR:-}" ]; then
  PARAMETERS="$PARAMETERS~dataflow_service_options=worker_accelerator=$ACCELERATOR"
fi
gcloud dataflow flex-template run "altcap-$(date +%Y%m%d-%H%M%S)" --project "$PROJECT" --region "$REGION" \
  --template-file-gcs-location "$SPEC" --temp-location "gs://$BUCKET/tmp" --staging-location "gs://$BUCKET/staging" \
  --max-workers "$MAX_WORKERS" --parameters "$PARAMETERS"
