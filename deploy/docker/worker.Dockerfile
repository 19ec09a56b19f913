# The slim worker image: workers/ only (no Dagster beyond dagster-pipes). The shard workers (started by
# PipesK8sClient, the entrypoint below) and, with their own command, the capture proxy (python -m workers.capture)
# and the replayers (python -m workers.replay) of deploy/kubernetes.
# Build from the repository root: docker build -f deploy/docker/worker.Dockerfile -t migration-assistant-worker .
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends liblz4-1 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
RUN pip install --no-cache-dir "dagster-pipes==1.13.27" "opensearch-py>=2.6" "boto3>=1.34" "orjson>=3.10" \
        "lz4>=4.3" "isal>=1.6" "zstandard>=0.22" "rich>=13.7" "pyyaml>=6.0"
# The capture proxy and the replayer: their CLIs (typer), Kafka, the proxy's HTTP parser, event loop and metrics,
# the replayer's options (pydantic), its HTTP client (aiohttp) and its tuple files (pyarrow).
RUN pip install --no-cache-dir "typer>=0.12" "confluent-kafka>=2.6" "httptools>=0.6" "uvloop>=0.19" \
        "prometheus-client>=0.20" "pydantic>=2.7" "aiohttp>=3.9" "pyarrow>=16"
COPY workers/ /app/workers/
# workers/ is copied, not installed: the pods' commands are `python -P -m …` (-P leaves the working directory off
# sys.path), so the package is found through PYTHONPATH.
ENV PYTHONPATH=/app PYTHONDONTWRITEBYTECODE=1
USER 65532
ENTRYPOINT ["python", "-m", "workers.rfs"]
