import sqlite3


def connect(path):
    return sqlite3.connect(path)


def find_user(conn, name):
    cur = conn.execute("SELECT id, name FROM users WHERE name = ?", (name,))
    return cur.fetchone()
