"""Services the router calls: rate limits, call records (SQLite, PostgreSQL, audit log),
the call-log reader, metrics and tracing.

Each is a small object passed to its user's constructor; none knows about transports or
upstream clients.
"""
