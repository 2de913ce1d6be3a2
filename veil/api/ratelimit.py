"""Moved to ``veil.auth.ratelimit``; this name stays for branches in flight."""

from veil.auth.ratelimit import DatabaseRateLimiter, Limiter, RateLimiter, retry_after

__all__ = ["DatabaseRateLimiter", "Limiter", "RateLimiter", "retry_after"]
