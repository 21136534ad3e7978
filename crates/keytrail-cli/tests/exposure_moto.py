"""Serves moto (IAM, STS, S3) on 127.0.0.1 holding the account a snapshot
directory describes, for the `keytrail exposure --live` test: the live
collection must resolve every leaked key as the snapshot does.

Reads SNAPSHOT/aws/iam-get-account-authorization-details.json (users with
their inline policies, roles with their trust, inline and attached policies),
SNAPSHOT/aws/iam-list-access-keys/*.json and SNAPSHOT/aws/s3api-list-buckets.json
and creates the same users, roles, access keys (with the snapshot's key ids
and statuses: moto chooses its own ids, so they are set on its model after
creation) and buckets. The account is moto's MOTO_ACCOUNT_ID (the test sets it
to the snapshot's account). Prints one JSON line with the endpoint and what it
created, then serves until its standard input closes.

Usage: python3 exposure_moto.py SNAPSHOT
"""

import glob
import json
import os
import sys

for k in list(os.environ):
    if k.startswith("AWS_"):
        del os.environ[k]
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["AWS_ACCESS_KEY_ID"] = "AKIAFAKEFAKEFAKEFAKE"
os.environ["AWS_SECRET_ACCESS_KEY"] = "fake-secret-for-moto"
# AWS managed policies (AdministratorAccess…) exist only when moto loads them.
os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def set_key_id(account, user, old, new, status):
    """Gives the key moto created for USER the snapshot's id and status."""
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    key = backend.access_keys.pop(old)
    key.access_key_id = new
    key.status = status
    backend.access_keys[new] = key
    assert backend.get_user(user).get_access_key_by_id(new) is key


def main():
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    snap = os.path.join(sys.argv[1], "aws")
    account = os.environ["MOTO_ACCOUNT_ID"]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    auth = load(os.path.join(snap, "iam-get-account-authorization-details.json"))
    created = {"users": [], "roles": [], "keys": [], "buckets": []}
    for u in auth.get("UserDetailList", []):
        name = u["UserName"]
        iam.create_user(UserName=name, Path=u.get("Path", "/"))
        for p in u.get("UserPolicyList", []):
            iam.put_user_policy(UserName=name, PolicyName=p["PolicyName"], PolicyDocument=json.dumps(p["PolicyDocument"]))
        for p in u.get("AttachedManagedPolicies", []):
            iam.attach_user_policy(UserName=name, PolicyArn=p["PolicyArn"])
        created["users"].append(name)
    for r in auth.get("RoleDetailList", []):
        name = r["RoleName"]
        iam.create_role(RoleName=name, Path=r.get("Path", "/"), AssumeRolePolicyDocument=json.dumps(r["AssumeRolePolicyDocument"]))
        for p in r.get("RolePolicyList", []):
            iam.put_role_policy(RoleName=name, PolicyName=p["PolicyName"], PolicyDocument=json.dumps(p["PolicyDocument"]))
        for p in r.get("AttachedManagedPolicies", []):
            iam.attach_role_policy(RoleName=name, PolicyArn=p["PolicyArn"])
        created["roles"].append(name)
    for path in sorted(glob.glob(os.path.join(snap, "iam-list-access-keys", "*.json"))):
        for k in load(path).get("AccessKeyMetadata", []):
            made = iam.create_access_key(UserName=k["UserName"])["AccessKey"]["AccessKeyId"]
            set_key_id(account, k["UserName"], made, k["AccessKeyId"], k.get("Status", "Active"))
            created["keys"].append(k["AccessKeyId"])
    buckets = os.path.join(snap, "s3api-list-buckets.json")
    if os.path.exists(buckets):
        for b in load(buckets).get("Buckets", []):
            s3.create_bucket(Bucket=b["Name"])
            created["buckets"].append(b["Name"])
    # What a live collection will see, read back through the API.
    listed = sorted(
        k["AccessKeyId"]
        for u in created["users"]
        for k in iam.list_access_keys(UserName=u)["AccessKeyMetadata"]
    )
    assert listed == sorted(created["keys"]), (listed, created["keys"])
    print(json.dumps({"endpoint": endpoint, "created": created}), flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
