"""Tickets, their file manifests, the report pages and the REST API."""
