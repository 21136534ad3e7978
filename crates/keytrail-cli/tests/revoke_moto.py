"""Serves moto (IAM, STS, Secrets Manager, SSM) on 127.0.0.1 for the
`keytrail revoke aws-key` and `keytrail rotate aws-key` tests, with IAM
authentication on, so an unknown, deleted or deactivated key is refused as
AWS refuses it (InvalidClientTokenId).

Seeds, while authentication is still off, the operator identities the tests
act as:
  operator    may do everything (the incident responder)
  auditor     may only read IAM and the stores (access denied on any write)
  nostore     may manage IAM keys and read the stores, not write them
  nodeact     may do everything but deactivate a key (iam:UpdateAccessKey)
then turns authentication on (moto's INITIAL_NO_AUTH_ACTION_COUNT, set to 0
through /moto-api/reset-auth) and prints one JSON line: the endpoint and each
identity's key. It then answers JSON requests, one per line on stdin, made
with the operator's key (so through the same authentication):

  {"op": "app", "user": NAME, "store": KIND, "keys": N}
      creates user NAME with N access keys (the first is "the" key), a policy
      allowing sts:GetCallerIdentity, and stores the first key as KIND:
      sm-json (aws_access_key_id/aws_secret_access_key plus other fields),
      sm-upper (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), sm-lines (dotenv),
      sm-weird (only the secret), ssm (SecureString JSON), none
  {"op": "whoami", "key_id": ID, "secret": S}   -> {"ok": bool, "arn"|"code"}
  {"op": "secret", "id": ID}                   -> {"value": TEXT}
  {"op": "param", "name": NAME}                -> {"value": TEXT, "type": T}
  {"op": "keys", "user": NAME}                 -> {"keys": [{"id", "status"}]}
  {"op": "deactivate", "user": NAME, "key_id": ID}
  {"op": "hold", "action": ACTION, "user": NAME}
      from now on, holds the next request for ACTION (an API action name
      such as PutSecretValue, GetCallerIdentity, UpdateAccessKey) that is
      about user NAME (its body names the user, as UserName= or in a secret
      id) or signed by one of NAME's keys: it waits, unanswered, until
      "release" (so tests running at the same time are not held)
  {"op": "held", "timeout": SECONDS}           -> {"held": bool} once a request is held
  {"op": "release"}
      answers the held request with a 503 without carrying it out, so a
      keytrail run killed while it waited is interrupted between two steps
      exactly as a crash or a lost connection would leave it

It serves until its standard input closes. Moto itself does not refuse
inactive keys; the patch below makes it (AWS does), so that "deactivated"
can be told from "still working" in the tests.
"""

import json
import os
import sys
import threading
import urllib.request

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for k in list(os.environ):
    if k.startswith("AWS_") and k != "AWS_DEFAULT_REGION":
        del os.environ[k]
os.environ["AWS_ACCESS_KEY_ID"] = "AKIAFAKEFAKEFAKEFAKE"
os.environ["AWS_SECRET_ACCESS_KEY"] = "fake-secret-for-moto"

import boto3  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from moto.core import responses as moto_responses  # noqa: E402
from moto.iam import access_control  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

_original_init = access_control.IAMUserAccessKey.__init__


def _refuse_inactive(self, account_id, partition, access_key_id, headers):
    _original_init(self, account_id, partition, access_key_id, headers)
    for user in self.backend.list_users("/", None, None):
        for key in user.access_keys:
            if key.access_key_id == access_key_id and key.status != "Active":
                raise access_control.CreateAccessKeyFailure(reason="InvalidId")


access_control.IAMUserAccessKey.__init__ = _refuse_inactive

# The request hold of the interruption tests (see "hold" above).
_hold_lock = threading.Lock()
_hold = {}
_original_call_action = moto_responses.BaseResponse.call_action
ACCOUNT = "123456789012"  # moto's default account


def _signing_key(headers):
    auth = headers.get("Authorization", "")
    if "Credential=" not in auth:
        return ""
    return auth.split("Credential=", 1)[1].split("/", 1)[0]


def _key_owner(key_id):
    from moto.iam.models import iam_backends

    for user in iam_backends[ACCOUNT]["aws"].list_users("/", None, None):
        if any(k.access_key_id == key_id for k in user.access_keys):
            return user.name
    return None


def _held(self, spec):
    if spec["hit"].is_set() or self._get_action() != spec["action"]:
        return False
    # JSON protocols (Secrets Manager) carry parameters in the body; query
    # protocols (IAM, STS) as a form, which moto parses into querystring.
    body = self.body if isinstance(self.body, str) else (self.body or b"").decode("utf-8", "replace")
    params = [v for values in self.querystring.values() for v in values if isinstance(v, str)]
    if spec["user"] in body or spec["user"] in params:
        return True
    return _key_owner(_signing_key(self.headers)) == spec["user"]


def _call_action_with_hold(self):
    with _hold_lock:
        spec = _hold.get("spec")
        if spec is not None and not _held(self, spec):
            spec = None
        if spec is not None:
            spec["hit"].set()
    if spec is None:
        return _original_call_action(self)
    spec["release"].wait(300)
    return 503, {}, "held by the test fixture and dropped"


moto_responses.BaseResponse.call_action = _call_action_with_hold

ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
READ_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Action": ["iam:Get*", "iam:List*", "sts:GetCallerIdentity", "secretsmanager:GetSecretValue",
                   "secretsmanager:DescribeSecret", "ssm:GetParameter", "ssm:GetParameters",
                   "ssm:DescribeParameters"],
        "Resource": "*",
    }],
}
NO_STORE_WRITE = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Action": ["iam:*", "sts:GetCallerIdentity", "secretsmanager:GetSecretValue",
                   "secretsmanager:DescribeSecret", "ssm:GetParameter", "ssm:GetParameters",
                   "ssm:DescribeParameters"],
        "Resource": "*",
    }],
}
NO_DEACTIVATE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:UpdateAccessKey", "Resource": "*"},
    ],
}
APP = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]}


def client(endpoint, service, key=None):
    kw = {}
    if key:
        kw = {"aws_access_key_id": key[0], "aws_secret_access_key": key[1]}
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", **kw)


def make_user(iam, name, policy):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


def main():
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    iam = client(endpoint, "iam")
    ids = {
        "operator": make_user(iam, "operator", ALLOW_ALL),
        "auditor": make_user(iam, "auditor", READ_ONLY),
        "nostore": make_user(iam, "nostore", NO_STORE_WRITE),
        "nodeact": make_user(iam, "nodeact", NO_DEACTIVATE),
    }
    # Authentication on from here: every request must be signed by a known,
    # active key, and is checked against its user's policies.
    req = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(req).read()
    op = ids["operator"]
    iam = client(endpoint, "iam", op)
    sm = client(endpoint, "secretsmanager", op)
    ssm = client(endpoint, "ssm", op)
    print(json.dumps({"endpoint": endpoint, "identities": {k: {"key_id": v[0], "secret": v[1]} for k, v in ids.items()}}), flush=True)
    for line in sys.stdin:
        r = json.loads(line)
        try:
            out = handle(r, endpoint, iam, sm, ssm)
        except ClientError as e:
            out = {"error": e.response["Error"]["Code"], "message": str(e)}
        print(json.dumps(out), flush=True)
    server.stop()


def handle(r, endpoint, iam, sm, ssm):
    op = r["op"]
    if op == "app":
        user = r["user"]
        key_id, secret = make_user(iam, user, APP)
        extra = []
        for _ in range(r.get("keys", 1) - 1):
            k = iam.create_access_key(UserName=user)["AccessKey"]
            extra.append(k["AccessKeyId"])
        store = r["store"]
        name = f"{user}/aws"
        if store == "sm-json":
            value = json.dumps({"region": "eu-west-1", "aws_access_key_id": key_id, "aws_secret_access_key": secret, "owner": "team-a"}, indent=2)
        elif store == "sm-upper":
            value = json.dumps({"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret})
        elif store == "sm-lines":
            value = f"# app credentials\nAWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}\nAWS_REGION=eu-west-1\n"
        elif store == "sm-weird":
            value = secret
        elif store == "ssm":
            value = json.dumps({"AccessKeyId": key_id, "SecretAccessKey": secret})
        else:
            value = None
        if store.startswith("sm-"):
            sm.create_secret(Name=name, SecretString=value)
        elif store == "ssm":
            name = f"/{user}/aws"
            ssm.put_parameter(Name=name, Value=value, Type="SecureString")
        return {"key_id": key_id, "secret": secret, "store": name, "value": value, "extra": extra}
    if op == "whoami":
        sts = client(endpoint, "sts", (r["key_id"], r["secret"]))
        try:
            return {"ok": True, "arn": sts.get_caller_identity()["Arn"]}
        except ClientError as e:
            return {"ok": False, "code": e.response["Error"]["Code"]}
    if op == "secret":
        return {"value": sm.get_secret_value(SecretId=r["id"])["SecretString"]}
    if op == "param":
        p = ssm.get_parameter(Name=r["name"], WithDecryption=True)["Parameter"]
        return {"value": p["Value"], "type": p["Type"]}
    if op == "keys":
        ks = iam.list_access_keys(UserName=r["user"])["AccessKeyMetadata"]
        return {"keys": [{"id": k["AccessKeyId"], "status": k["Status"]} for k in ks]}
    if op == "deactivate":
        iam.update_access_key(UserName=r["user"], AccessKeyId=r["key_id"], Status="Inactive")
        return {"ok": True}
    if op == "hold":
        spec = {
            "action": r["action"],
            "user": r["user"],
            "hit": threading.Event(),
            "release": threading.Event(),
        }
        with _hold_lock:
            _hold["spec"] = spec
        return {"ok": True}
    if op == "held":
        with _hold_lock:
            spec = _hold.get("spec")
        return {"held": spec is not None and spec["hit"].wait(r.get("timeout", 60))}
    if op == "release":
        with _hold_lock:
            spec = _hold.pop("spec", None)
        if spec is not None:
            spec["release"].set()
        return {"ok": True}
    return {"error": f"unknown op {op}"}


if __name__ == "__main__":
    main()
