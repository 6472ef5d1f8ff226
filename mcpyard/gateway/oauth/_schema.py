"""The OAuth tables, in the records database (schema 3 of the call records).

Grants and their refresh state live beside the call records, so that every replica sharing
that database (SQLite file, or PostgreSQL) shares them and they survive a restart. Only
SHA-256 hashes of codes, access tokens, refresh tokens and client secrets are stored. No
imports here: ``_records`` and ``_pgrecords`` take these statements into their migrations.
"""

from __future__ import annotations


def tables(real: str) -> str:
    """The CREATE statements; ``real`` is the floating-point type (REAL / DOUBLE PRECISION)."""
    return f"""
CREATE TABLE oauth_clients (
    client_id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    secret_hash TEXT,
    metadata TEXT NOT NULL,
    created {real} NOT NULL
);
CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires {real} NOT NULL
);
CREATE TABLE oauth_grants (
    id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    member TEXT NOT NULL,
    "user" TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_name TEXT NOT NULL,
    resource TEXT NOT NULL,
    scope TEXT NOT NULL,
    sign_in TEXT NOT NULL,
    token_hash TEXT,
    created {real} NOT NULL,
    refreshed {real} NOT NULL,
    access_hash TEXT NOT NULL,
    access_expires {real} NOT NULL,
    refresh_hash TEXT NOT NULL,
    refresh_expires {real} NOT NULL,
    previous_refresh_hash TEXT,
    revoked {real}
);
CREATE INDEX oauth_grants_access ON oauth_grants (access_hash);
CREATE INDEX oauth_grants_refresh ON oauth_grants (refresh_hash);
CREATE INDEX oauth_grants_previous ON oauth_grants (previous_refresh_hash);
CREATE INDEX oauth_grants_member ON oauth_grants (workspace, member);
"""


CALL_COLUMNS = ("oauth_client", "oauth_grant")
"""Call record columns added with the tables: which OAuth client and grant made the call."""


def migration(real: str) -> str:
    """Schema 2 -> 3: the call records' OAuth columns and the OAuth tables."""
    columns = "".join(f"ALTER TABLE calls ADD COLUMN {c} TEXT;\n" for c in CALL_COLUMNS)
    return columns + tables(real)
