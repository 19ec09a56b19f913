"""Elasticsearch/OpenSearch documents on top of Lucene: ids, types, routing and source of live documents."""
