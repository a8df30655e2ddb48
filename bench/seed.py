"""Seeds a stopped TruSec's SQLite database with bulk rows (issue #10 item
7): 100k users, 1M sessions, 10k clients, straight through SQL.

Each bulk row is a copy of a row the bench made through the API (so every
column has a value the server itself wrote), with what must be unique
replaced: a fresh prefixed ULID id, a unique email, a random token or
secret hash. The bench's own rows stay as they are, so the scenarios hit
one row among many.
"""

import os
import sqlite3
import time

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
SIZES = {"users": 100_000, "sessions": 1_000_000, "oauth_clients": 10_000}
PREFIX = {"users": "user", "sessions": "sess", "oauth_clients": "client"}


def ulid(ms, rand):
    """A ULID in TruSec's lowercase form: 48-bit time, 80 random bits."""
    v = (ms << 80) | rand
    return "".join(CROCKFORD[(v >> (5 * i)) & 31] for i in reversed(range(26)))


def _template(db, table):
    db.row_factory = sqlite3.Row
    row = db.execute(f"SELECT * FROM {table} ORDER BY created_at LIMIT 1").fetchone()
    db.row_factory = None
    if row is None:
        raise RuntimeError(f"seed: {table} has no row to copy")
    return dict(row)


def seed_sqlite(path, scale=1.0):
    """Adds the bulk rows; returns how many of each."""
    db = sqlite3.connect(path)
    try:
        prefix = {t: _template(db, t)["id"].split("_", 1)[0] for t in SIZES}
        for t, p in PREFIX.items():
            if prefix[t] != p:
                raise RuntimeError(f"seed: {t} ids start {prefix[t]!r}, expected {p!r}")
        counts = {}
        ms = int(time.time() * 1000) - 86_400_000  # a day ago: older than the bench's rows
        users = []
        for table in ("users", "oauth_clients", "sessions"):
            row = _template(db, table)
            cols = list(row)
            n = int(SIZES[table] * scale)
            placeholders = ",".join("?" for _ in cols)
            sql = f"INSERT INTO {table} ({','.join(cols)}) VALUES ({placeholders})"

            def rows():
                for i in range(n):
                    r = dict(row)
                    r["id"] = f"{PREFIX[table]}_{ulid(ms + i // 1000, int.from_bytes(os.urandom(10), 'big'))}"
                    if table == "users":
                        r["email"] = r["email_normalized"] = f"seed{i}@example.com"
                        users.append(r["id"])
                    elif table == "sessions":
                        r["token_hash"] = os.urandom(32).hex()
                        r["user_id"] = users[i % len(users)] if users else r["user_id"]
                    elif table == "oauth_clients":
                        r["secret_hash"] = os.urandom(32).hex()
                        r["name"] = f"seed client {i}"
                    yield tuple(r[c] for c in cols)

            with db:
                db.executemany(sql, rows())
            counts[table] = n
        db.execute("ANALYZE")
        db.commit()
        return counts
    finally:
        db.close()
