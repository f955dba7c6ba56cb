#!/usr/bin/env python3
"""Test fixture: the ClickHouse 26.9 engine (PyPI chdb-core) behind a minimal HTTP front.

This is NOT a ClickHouse server and nothing ships it. It lets the integration tests talk to the
26.9 engine over the parts of ClickHouse's HTTP interface that dispatch-ingest, its reports and
its tests use:

- `GET /ping` (and `GET /` without a query) -> `Ok.`
- `GET|POST /?query=...` and `POST /` with the query as body; `database=`, `default_format=` and
  every other non-reserved URL parameter applied as a setting for that one request (`SET k = v`
  before, `SET k = DEFAULT` after);
- `INSERT INTO t(cols) FORMAT <fmt>` in `query=` with the body as the data (any input format
  chdb knows, RowBinary and RowBinaryWithNamesAndTypes included; run as `INSERT INTO t(cols)
  FROM INFILE <the body> FORMAT <fmt>`, so `INSERT ... SETTINGS` is not), the body optionally in
  ClickHouse's compressed block format (`decompress=1`, LZ4 or none; the CityHash checksums are
  not verified), and chunked request bodies;
- results in whatever format the query names (RowBinary*, JSON*, TabSeparated*,
  PrettyCompactMonoBlock, ...), TabSeparated when none is named, sent uncompressed;
- errors as HTTP 4xx/5xx with ClickHouse's `Code: N. DB::Exception: ...` text and the
  `X-ClickHouse-Exception-Code` header.

Not supported (answered with an error, never faked): server-side query parameters (`param_*`),
sessions (`session_id`), compressed responses, the native TCP protocol. User and password are
accepted and ignored: queries run as chdb's `default` user, so grants are not enforced here.

All requests go through one persistent chdb session on disk (`--data-dir`), serialised by one
lock: chdb runs one query at a time per session, and the per-request `USE`/`SET` would otherwise
leak into concurrent requests.

Usage: chdb_http.py --data-dir DIR [--port N] [--port-file FILE]; CHDB_HTTP_TRACE=1 logs each request.
(port 0 picks a free one; it is written to --port-file when the server listens).
"""
import argparse
import http.server
import os
import re
import shutil
import socketserver
import struct
import sys
import tempfile
import threading
import urllib.parse

import chdb
from chdb import session as chdb_session

# URL parameters of ClickHouse's HTTP interface that are not settings.
RESERVED = {
    "query", "database", "default_format", "decompress", "compress", "user", "password",
    "query_id", "role", "quota_key", "buffer_size", "wait_end_of_query",
}
UNSUPPORTED = {"session_id", "session_timeout", "session_check"}
# CHDB_HTTP_TRACE=1 logs every request (database, setting names, query text) to stderr.
TRACE = os.environ.get("CHDB_HTTP_TRACE") == "1"
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
INSERT_WITH_DATA = re.compile(
    r"^\s*(INSERT\s+INTO\s+.*?)\s+FORMAT\s+([A-Za-z0-9_]+)\s*$", re.IGNORECASE | re.DOTALL
)
ERROR_CODE = re.compile(r"Code: (\d+)")
# HTTP status for a few exception codes, as ClickHouse's HTTPHandler maps them.
STATUS = {
    62: 400, 27: 400, 26: 400, 117: 400, 6: 400, 38: 400, 53: 400, 691: 400,
    60: 404, 81: 404, 47: 404, 16: 404, 46: 404,
    497: 403, 516: 403, 192: 403,
}


class ClickHouseError(Exception):
    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code
        self.text = text


def error_from(exc: Exception) -> ClickHouseError:
    text = str(exc).strip()
    m = ERROR_CODE.search(text)
    code = int(m.group(1)) if m else 1001  # STD_EXCEPTION, as the server reports foreign errors
    if not m:
        text = f"Code: {code}. DB::Exception: {text}"
    return ClickHouseError(code, text)


def decompress_blocks(data: bytes) -> bytes:
    """ClickHouse's compressed block stream: 16-byte checksum, method byte, u32 compressed size
    (with the 9-byte header), u32 decompressed size, payload."""
    import lz4.block

    out, pos = [], 0
    while pos < len(data):
        if len(data) - pos < 25:
            raise ClickHouseError(432, "Code: 432. DB::Exception: Truncated compressed block (CANNOT_DECOMPRESS)")
        method, csize, dsize = struct.unpack_from("<BII", data, pos + 16)
        payload = data[pos + 25 : pos + 16 + csize]
        if len(payload) != csize - 9:
            raise ClickHouseError(432, "Code: 432. DB::Exception: Truncated compressed block (CANNOT_DECOMPRESS)")
        if method == 0x82:
            out.append(lz4.block.decompress(payload, uncompressed_size=dsize))
        elif method == 0x02:
            out.append(payload)
        else:
            raise ClickHouseError(
                89, f"Code: 89. DB::Exception: Compression method 0x{method:02x} is not supported by this fixture (UNKNOWN_COMPRESSION_METHOD)"
            )
        pos += 16 + csize
    return b"".join(out)


class Engine:
    def __init__(self, data_dir: str):
        self.session = chdb_session.Session(data_dir)
        self.spool = tempfile.mkdtemp(prefix="chdb-http-insert-", dir=os.path.dirname(os.path.abspath(data_dir)))
        self.lock = threading.Lock()
        self.version = self.session.query("SELECT version()", "TSV").bytes().decode().strip()

    def _q(self, sql: str, fmt: str = "TSV") -> bytes:
        try:
            return self.session.query(sql, fmt).bytes()
        except Exception as e:  # chdb raises ChdbError/RuntimeError with ClickHouse's text
            raise error_from(e) from None

    def run(self, sql: str, data, database, settings: dict, default_format: str) -> bytes:
        with self.lock:
            applied = []
            try:
                self._q(f"USE `{(database or 'default').replace('`', '')}`")
                for k, v in settings.items():
                    self._q(f"SET {k} = {quote(v)}")
                    applied.append(k)
                m = INSERT_WITH_DATA.match(sql) if data is not None else None
                if m:
                    return self._insert(m.group(1), m.group(2), data)
                return self._q(sql, default_format)
            finally:
                for k in applied:
                    try:
                        self._q(f"SET {k} = DEFAULT")
                    except ClickHouseError:
                        pass
                try:
                    self._q("USE default")
                except ClickHouseError:
                    pass

    def _insert(self, head: str, fmt: str, data: bytes) -> bytes:
        # The body goes through a file and `INSERT ... FROM INFILE`, the same input-format path
        # as an HTTP insert. Not chdb's streaming `send_insert`: in chdb-core 26.9.0 it reports
        # success (rows_written > 0, nothing written) when a MATERIALIZED expression throws.
        if not data:
            raise ClickHouseError(108, "Code: 108. DB::Exception: No data to insert. (NO_DATA_TO_INSERT)")
        with tempfile.NamedTemporaryFile(dir=self.spool, suffix=".bin") as f:
            f.write(data)
            f.flush()
            return self._q(f"{head} FROM INFILE '{f.name}' FORMAT {fmt}")


def quote(v: str) -> str:
    if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", v):
        return v
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine: Engine = None  # set in main

    def log_message(self, fmt, *args):  # quiet; errors are logged in _error
        pass

    def _send(self, status: int, body: bytes, headers=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, e: ClickHouseError, sql: str):
        text = e.text
        if "(version " not in text:
            text += f" (version {self.engine.version})"
        print(f"chdb_http: error {e.code} for {sql[:200]!r}: {text[:300]}", file=sys.stderr, flush=True)
        self._send(
            STATUS.get(e.code, 500),
            (text + "\n").encode(),
            [("X-ClickHouse-Exception-Code", str(e.code))],
        )

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self._handle(b"")

    def do_POST(self):
        self._handle(self._body())

    def _handle(self, body: bytes):
        url = urllib.parse.urlsplit(self.path)
        params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        p = {k: v[-1] for k, v in params.items()}
        sql = p.get("query")
        try:
            if url.path in ("/ping", "/") and sql is None and not body:
                return self._send(200, b"Ok.\n")
            if url.path not in ("/", "/query"):
                raise ClickHouseError(
                    1001, f"Code: 1001. DB::Exception: {url.path} is not served by this fixture"
                )
            bad = sorted(k for k in p if k in UNSUPPORTED or k.startswith("param_"))
            if bad or self.headers.get("Content-Type", "").startswith("multipart/"):
                raise ClickHouseError(
                    1001, f"Code: 1001. DB::Exception: not supported by this fixture: {bad or 'multipart body'}"
                )
            settings = {}
            for k, v in p.items():
                if k in RESERVED:
                    continue
                if not SETTING_NAME.match(k):
                    raise ClickHouseError(115, f"Code: 115. DB::Exception: Unknown setting {k}. (UNKNOWN_SETTING)")
                settings[k] = v
            data = None
            if sql is None:
                sql = body.decode()
            elif body:
                if INSERT_WITH_DATA.match(sql):
                    data = decompress_blocks(body) if p.get("decompress") == "1" else body
                else:
                    sql = sql + "\n" + body.decode()
            if not sql.strip():
                raise ClickHouseError(62, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
            if p.get("decompress") == "1" and data is None:
                raise ClickHouseError(1001, "Code: 1001. DB::Exception: decompress=1 without INSERT data")
            if TRACE:
                print(f"chdb_http: {p.get('database')} {sorted(settings)} {sql[:300]!r} "
                      f"body={len(body)} data={None if data is None else len(data)} "
                      f"te={self.headers.get('Transfer-Encoding')} cl={self.headers.get('Content-Length')}",
                      file=sys.stderr, flush=True)
            out = self.engine.run(sql, data, p.get("database"), settings, p.get("default_format") or "TabSeparated")
            if TRACE:
                print(f"chdb_http: -> 200, {len(out)} bytes", file=sys.stderr, flush=True)
            self._send(200, out, [("X-ClickHouse-Server-Display-Name", "chdb-http-fixture")])
        except ClickHouseError as e:
            self._error(e, sql or "")
        except (BrokenPipeError, ConnectionResetError):
            pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    a = ap.parse_args()
    Handler.engine = Engine(a.data_dir)
    srv = Server((a.host, a.port), Handler)
    port = srv.server_address[1]
    print(f"chdb_http: ClickHouse {Handler.engine.version} (chdb {chdb.__version__}) "
          f"on http://{a.host}:{port}, data in {a.data_dir}", file=sys.stderr, flush=True)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(a.port_file + ".tmp", a.port_file)
    import signal

    def stop(*_):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv.serve_forever()
    srv.server_close()
    with Handler.engine.lock:
        Handler.engine.session.close()
    shutil.rmtree(Handler.engine.spool, ignore_errors=True)
    print("chdb_http: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
