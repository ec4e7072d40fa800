"""The node's HTTP API (FastAPI): parties authenticate with Ed25519 (EdDSA JWTs) or API tokens."""
