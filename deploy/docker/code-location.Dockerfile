# The Dagster code-location image (assets, sensors, jobs, resources; the workers for local-mode shards).
# Build from the repository root: docker build -f deploy/docker/code-location.Dockerfile -t migration-assistant .
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends liblz4-1 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md workspace.yaml /app/
COPY migration_pipeline/ /app/migration_pipeline/
COPY assets/ /app/assets/
COPY resources/ /app/resources/
COPY jobs/ /app/jobs/
COPY sensors/ /app/sensors/
COPY workers/ /app/workers/
RUN pip install --no-cache-dir /app
USER 65532
