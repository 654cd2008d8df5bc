"""Pieces that know nothing of Flask: rate limiting, retry/backoff, validation."""
