"""Metadata migration: read the source's templates and indices, transform them per version pair, evaluate, migrate."""
