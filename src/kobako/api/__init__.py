"""The Docker-compatible Engine API (see app.py)."""
