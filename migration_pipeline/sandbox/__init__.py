"""A local sandbox of real engines (Elasticsearch, OpenSearch, Kafka, moto S3) on 127.0.0.1."""
