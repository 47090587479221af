#!/bin/sh
# Run by the minio-init service at every `up` (idempotent): the platform's buckets, and its own
# access key (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) with MinIO's readwrite policy, so that no
# service but this one holds MinIO's root credentials.
set -eu
mc alias set resight http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
for bucket in resight-landing resight-lake resight-mlflow resight-dagster; do
    mc mb --ignore-existing "resight/$bucket"
done
mc admin user add resight "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
mc admin policy attach resight readwrite --user "$AWS_ACCESS_KEY_ID" || echo "readwrite already attached"
