"""Driving the workflow: in-process against ``$DAGSTER_HOME``, or through a Dagster webserver's GraphQL API."""
