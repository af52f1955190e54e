"""The OCI distribution registry under /v2/: blob store, uploads, manifests, the HTTP API."""
