"""The history of counts.

We keep the history in SQLite rather than a JSON file: several tally processes may save at once, and
SQLite's locking keeps their writes whole; it ships with Python, so there is nothing to install.
"""
import os
import sqlite3

DB = os.path.expanduser("~/.tally.db")


def save(counts):
    with sqlite3.connect(DB) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS counts (path TEXT, lines INTEGER, words INTEGER)")
        conn.executemany("INSERT INTO counts VALUES (?, ?, ?)", [(p, c["lines"], c["words"]) for p, c in counts.items()])
