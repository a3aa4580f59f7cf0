"""Streaming readers for legacy exports: CSV, XML, JSON arrays and NDJSON."""
