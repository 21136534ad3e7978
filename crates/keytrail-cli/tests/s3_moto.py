"""Serves moto's S3 on 127.0.0.1 (a free port) for the `keytrail detect s3://`
tests: creates the bucket BUCKET, uploads every file under DIR with its path
relative to DIR as its key, prints the endpoint as one JSON line, then serves
until its standard input closes.

Two more bucket names serve the same objects with faults, as S3 answers them
(path-style requests, rewritten to BUCKET before moto sees them):
  throttled-BUCKET  the first GET of every object whose key's CRC32 is a
                    multiple of 16 is answered 503 SlowDown (the client must
                    retry it), and so is the first listing of each folder
  denied-BUCKET     every GET of an object whose key contains DENY (the third
                    argument) is answered 403 AccessDenied
  locked-BUCKET     every request is answered 403 AccessDenied, as for a
                    bucket whose policy refuses the caller
GET /_faults answers how many of each were served, as JSON.

Usage: python3 s3_moto.py BUCKET DIR [DENY]
"""

import json
import os
import sys

os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "fake-secret-for-moto")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import threading  # noqa: E402
import zlib  # noqa: E402

import boto3  # noqa: E402
from moto.moto_server.threaded_moto_server import (  # noqa: E402
    DomainDispatcherApplication,
    create_backend_app,
    make_server,
)
from moto.server import ThreadedMotoServer  # noqa: E402

FAULTS = {"throttled": 0, "denied": 0, "locked": 0}
_seen = set()
_lock = threading.Lock()


def s3_error(start_response, status, code, message):
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault</RequestId></Error>"
    ).encode()
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


def faults(app, bucket, deny):
    """WSGI middleware: the fault buckets of the module's documentation."""

    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/_faults":
            body = json.dumps(FAULTS).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        parts = path.lstrip("/").split("/", 1)
        kind = None
        for k in ("throttled", "denied", "locked"):
            if parts[0] == f"{k}-{bucket}":
                kind = k
        if kind is None:
            return app(environ, start_response)
        key = parts[1] if len(parts) > 1 else ""
        environ["PATH_INFO"] = "/" + bucket + ("/" + key if len(parts) > 1 else "")
        environ["RAW_URI"] = environ.get("RAW_URI", "").replace(f"/{kind}-{bucket}", f"/{bucket}", 1)
        environ["REQUEST_URI"] = environ.get("REQUEST_URI", "").replace(f"/{kind}-{bucket}", f"/{bucket}", 1)
        is_get = environ.get("REQUEST_METHOD") == "GET"
        is_object = is_get and key != ""
        if kind == "throttled" and is_get:
            ident = key if is_object else "list?" + environ.get("QUERY_STRING", "")
            first = False
            with _lock:
                if ident not in _seen:
                    _seen.add(ident)
                    first = not is_object or zlib.crc32(key.encode()) % 16 == 0
                    if first:
                        FAULTS["throttled"] += 1
            if first:
                return s3_error(start_response, "503 Slow Down", "SlowDown", "Please reduce your request rate.")
        if kind == "locked":
            with _lock:
                FAULTS["locked"] += 1
            return s3_error(start_response, "403 Forbidden", "AccessDenied", "Access Denied")
        if kind == "denied" and is_object and deny and deny in key:
            with _lock:
                FAULTS["denied"] += 1
            return s3_error(start_response, "403 Forbidden", "AccessDenied", "Access Denied")
        return app(environ, start_response)

    return wrapped


class FaultyMotoServer(ThreadedMotoServer):
    """moto behind the fault middleware."""

    def __init__(self, bucket, deny):
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self._bucket = bucket
        self._deny = deny

    def _server_entry(self):
        app = faults(DomainDispatcherApplication(create_backend_app), self._bucket, self._deny)
        self._server = make_server(self._ip_address, self._port, app, True)
        self._server_ready_event.set()
        self._server.serve_forever()


def main():
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    bucket, root = sys.argv[1], sys.argv[2]
    deny = sys.argv[3] if len(sys.argv) > 3 else None
    server = FaultyMotoServer(bucket, deny)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    uploaded = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            key = os.path.relpath(path, root).replace(os.sep, "/")
            s3.upload_file(path, bucket, key)
            uploaded += 1
    print(json.dumps({"endpoint": endpoint, "uploaded": uploaded}), flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
