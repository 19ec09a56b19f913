# The slim shard-worker image: workers/ only (no Dagster beyond dagster-pipes), started by PipesK8sClient.
# Build from the repository root: docker build -f deploy/docker/worker.Dockerfile -t migration-assistant-worker .
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends liblz4-1 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
RUN pip install --no-cache-dir "dagster-pipes==1.13.27" "opensearch-py>=2.6" "boto3>=1.34" "orjson>=3.10" \
        "lz4>=4.3" "isal>=1.6" "zstandard>=0.22" "rich>=13.7" "pyyaml>=6.0"
COPY workers/ /app/workers/
USER 65532
ENTRYPOINT ["python", "-m", "workers.rfs"]
