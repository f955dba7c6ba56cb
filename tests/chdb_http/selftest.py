#!/usr/bin/env python3
"""Self-test of the chdb HTTP fixture (tests/chdb_http/chdb_http.py) against a running instance:
what the Rust tests rely on must hold before their results mean anything. Exit 1 on a failure.

Usage: selftest.py URL
"""
import struct
import sys
import urllib.error
import urllib.parse
import urllib.request

import lz4.block

URL = sys.argv[1].rstrip("/")


def req(body=b"", **params):
    url = URL + "/?" + urllib.parse.urlencode(params)
    r = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(r, timeout=60) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def compressed(data: bytes) -> bytes:
    """One ClickHouse compressed block (LZ4), checksum left zero (the fixture does not check)."""
    payload = lz4.block.compress(data, store_size=False)
    return b"\0" * 16 + struct.pack("<BII", 0x82, len(payload) + 9, len(data)) + payload


def check(name, cond, detail=""):
    print(f"chdb_http selftest: {'ok  ' if cond else 'FAIL'} {name}{'' if cond else ': ' + str(detail)}")
    return cond


def main() -> int:
    ok = True
    with urllib.request.urlopen(URL + "/ping", timeout=10) as r:
        ok &= check("/ping", r.read() == b"Ok.\n")
    db = "selftest_chdb_http"
    req(f"DROP DATABASE IF EXISTS {db}".encode())
    s, _, b = req(f"CREATE DATABASE {db}".encode())
    ok &= check("CREATE DATABASE", s == 200, b)
    s, _, b = req(b"CREATE TABLE t (a UInt32, b String, c UInt8 MATERIALIZED throwIf(b = 'bad')) "
                  b"ENGINE = MergeTree ORDER BY a", database=db)
    ok &= check("CREATE TABLE in database=", s == 200, b)
    row = lambda a, t: struct.pack("<I", a) + bytes([len(t)]) + t.encode()
    s, _, b = req(row(1, "x") + row(2, "y"), query="INSERT INTO t(a, b) FORMAT RowBinary", database=db)
    ok &= check("INSERT RowBinary", s == 200, b)
    s, _, b = req(compressed(row(3, "z")), query="INSERT INTO t(a, b) FORMAT RowBinary", database=db, decompress="1")
    ok &= check("INSERT RowBinary, LZ4-compressed body", s == 200, b)
    s, h, b = req(row(4, "ok") + row(5, "bad"), query="INSERT INTO t(a, b) FORMAT RowBinary", database=db)
    ok &= check("a throwing MATERIALIZED column rejects the insert with code 395",
                s == 500 and h.get("X-ClickHouse-Exception-Code") == "395" and b.startswith(b"Code: 395."), (s, b))
    s, _, b = req(b"SELECT count() FROM t", database=db)
    ok &= check("nothing of the rejected insert written", b == b"3\n", b)
    s, h, b = req(b"SELECT * FROM nowhere", database=db)
    ok &= check("unknown table: 404, Code: 60 and the header",
                s == 404 and h.get("X-ClickHouse-Exception-Code") == "60" and b"Code: 60." in b, (s, b))
    s, _, b = req(b"SELECT getSetting('max_threads')", max_threads="3")
    ok &= check("URL setting applied", b == b"3\n", b)
    s, _, b = req(b"SELECT getSetting('max_threads') = 3")
    ok &= check("URL setting reset after the request", b == b"0\n", b)
    s, _, b = req(b"SELECT a, b FROM t ORDER BY a FORMAT JSONEachRow", database=db)
    ok &= check("JSONEachRow", b.splitlines()[0] == b'{"a":1,"b":"x"}', b)
    s, _, b = req(b"SELECT a FROM t ORDER BY a FORMAT PrettyCompactMonoBlock", database=db)
    ok &= check("PrettyCompactMonoBlock", s == 200 and "┌".encode() in b, b)
    s, _, b = req(b"SELECT currentDatabase()")
    ok &= check("database= does not leak into the next request", b == b"default\n", b)
    req(f"DROP DATABASE {db}".encode())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
