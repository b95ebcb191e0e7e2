"""The REST API at /v1/ (see main.py)."""
