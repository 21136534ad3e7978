#!/usr/bin/env python3
"""Starts moto on 127.0.0.1 (a free port) with IAM authentication on, seeds
IAM users with access keys, and prints one JSON line: the endpoint and the
keys. It then serves until its standard input closes.

Used by crates/keytrail-verify/tests/aws_moto.rs. Nothing here reaches AWS.

INITIAL_NO_AUTH_ACTION_COUNT=3: the first three requests (creating the
`admin` user, attaching AdministratorAccess, creating its key) are let
through; every later request must be signed by a key moto knows, with a
matching signature, and is authorised against the caller's policies, so
unknown and deleted keys fail as they do on AWS.
"""

import json
import os
import sys

os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(var, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
server.start()
host, port = server.get_host_and_port()
endpoint = f"http://{host}:{port}"


def iam(key=None):
    kw = {}
    if key:
        kw = {"aws_access_key_id": key["id"], "aws_secret_access_key": key["secret"]}
    return boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", **kw)


# The three unauthenticated requests.
boot = iam()
boot.create_user(UserName="admin")
boot.attach_user_policy(
    UserName="admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"
)
k = boot.create_access_key(UserName="admin")["AccessKey"]
admin = {"id": k["AccessKeyId"], "secret": k["SecretAccessKey"]}

# From here on every request is signed with the admin key.
a = iam(admin)
keys = {"admin": admin}

# A user who can read its own policies and every S3 object: data access.
a.create_user(UserName="reader")
a.put_user_policy(
    UserName="reader",
    PolicyName="self-and-s3",
    PolicyDocument=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["iam:List*", "iam:Get*"], "Resource": "*"},
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"},
            ],
        }
    ),
)
k = a.create_access_key(UserName="reader")["AccessKey"]
keys["reader"] = {"id": k["AccessKeyId"], "secret": k["SecretAccessKey"]}

# A user allowed nothing but to exist: its policies cannot be read.
a.create_user(UserName="nobody")
k = a.create_access_key(UserName="nobody")["AccessKey"]
keys["nobody"] = {"id": k["AccessKeyId"], "secret": k["SecretAccessKey"]}

# A deleted key.
a.create_user(UserName="leaver")
k = a.create_access_key(UserName="leaver")["AccessKey"]
keys["deleted"] = {"id": k["AccessKeyId"], "secret": k["SecretAccessKey"]}
a.delete_access_key(UserName="leaver", AccessKeyId=k["AccessKeyId"])

print(json.dumps({"endpoint": endpoint, "keys": keys}), flush=True)
sys.stdin.read()
server.stop()
