"""Serves moto's S3 on 127.0.0.1 (a free port) for the `keytrail detect s3://`
tests: creates the bucket BUCKET, uploads every file under DIR with its path
relative to DIR as its key, prints the endpoint as one JSON line, then serves
until its standard input closes.

Usage: python3 s3_moto.py BUCKET DIR
"""

import json
import os
import sys

os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "fake-secret-for-moto")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402


def main():
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    bucket, root = sys.argv[1], sys.argv[2]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
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
