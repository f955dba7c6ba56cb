#!/usr/bin/env python3
"""Cross-version SQL check: apply every migration under schemas/clickhouse/migrations (in order)
to a throwaway database, then run every report query under schemas/clickhouse/queries and the
public (BI) schema under schemas/clickhouse/public, on one engine:

  --engine chdb               ClickHouse 26.x in-process (PyPI chdb-core)
  --engine http --url URL     a real server over HTTP (the local 18.16)

Files use the same conventions as the Rust migrator (src/sink/migrations.rs): statements are separated by a
line `-- statement-break`, a trailing `;` is dropped, comment-only chunks are skipped, and `{db}`
stands for the database. Each file counts as one test. Exit 1 if any failed, 2 if there is nothing
to check (a check that checks nothing must not pass).
"""
import argparse
import pathlib
import secrets
import sys
import tempfile
import urllib.error
import urllib.request

BREAK = "-- statement-break"


def statements(sql: str, db: str):
    chunks, cur = [], []
    for line in sql.splitlines():
        if line.strip() == BREAK:
            chunks.append(cur)
            cur = []
        else:
            cur.append(line)
    chunks.append(cur)
    out = []
    for chunk in chunks:
        code = [l for l in chunk if l.strip() and not l.lstrip().startswith("--")]
        if code:
            out.append("\n".join(chunk).strip().rstrip(";").strip().replace("{db}", db))
    return out


class Chdb:
    def __init__(self):
        from chdb import session  # noqa: imported here so --engine http needs no chdb

        self.dir = tempfile.TemporaryDirectory()
        self.session = session.Session(self.dir.name)
        self.name = "chdb " + self.query("SELECT version()").strip().strip('"')

    def query(self, sql: str) -> str:
        return str(self.session.query(sql, "TSV"))

    def close(self):
        self.session.close()
        self.dir.cleanup()


class Http:
    def __init__(self, url: str):
        self.url = url.rstrip("/") + "/"
        self.name = "server " + self.query("SELECT version()").strip() + " at " + url

    def query(self, sql: str) -> str:
        req = urllib.request.Request(self.url, data=sql.encode(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            raise RuntimeError(e.read().decode().strip()) from None

    def close(self):
        pass


def main() -> int:
    repo = pathlib.Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=["chdb", "http"], required=True)
    ap.add_argument("--url", default="http://127.0.0.1:8123")
    ap.add_argument("--schemas-dir", default=str(repo / "schemas" / "clickhouse"))
    args = ap.parse_args()

    root = pathlib.Path(args.schemas_dir)
    migrations = sorted((root / "migrations").glob("*.sql"))
    queries = sorted((root / "queries").glob("*.sql"))
    public = sorted((root / "public").glob("*.sql"))
    if not migrations and not queries:
        print(f"sql-check: no SQL files under {root}", file=sys.stderr)
        return 2

    engine = Chdb() if args.engine == "chdb" else Http(args.url)
    db = "sqlcheck_" + secrets.token_hex(4)
    passed = failed = 0
    try:
        engine.query(f"CREATE DATABASE {db}")
        for kind, files in (("migration", migrations), ("query", queries), ("public", public)):
            for f in files:
                stmts = statements(f.read_text(), db)
                if not stmts:
                    print(f"FAIL {kind} {f.name}: no statement")
                    failed += 1
                    continue
                if kind == "query" and len(stmts) != 1:
                    print(f"FAIL {kind} {f.name}: {len(stmts)} statements, a query file holds one")
                    failed += 1
                    continue
                for i, stmt in enumerate(stmts, 1):
                    try:
                        engine.query(stmt)
                    except Exception as e:  # any engine error fails the file
                        first = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
                        print(f"FAIL {kind} {f.name} statement {i}: {first}")
                        failed += 1
                        break
                else:
                    print(f"ok   {kind} {f.name} ({len(stmts)} statement{'s' if len(stmts) > 1 else ''})")
                    passed += 1
    finally:
        try:
            engine.query(f"DROP DATABASE IF EXISTS {db}")
        finally:
            engine.close()
    print(f"sql-check on {engine.name}")
    print(f"sql-check: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
