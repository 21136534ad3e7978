#!/usr/bin/env python3
"""Starts moto on 127.0.0.1 (a free port) with an AWS organization for the
`keytrail submit aws-org` and `collect aws --role-arn` tests, prints one
JSON line (the endpoint, the accounts, credentials of a member and of an
account outside any organization) and serves until its standard input
closes.

The management account is moto's default, 123456789012 (any access key
that moto did not issue maps to it). Members, created with CreateAccount (which makes the role
OrganizationAccountAccessRole in each, as AWS does):
  alpha   user alpha-deploy with one access key 400 days old
          (aws.iam.access_key_age)
  beta    user beta-ci with two active keys (aws.iam.two_active_keys)
  norole  created with RoleName=keytrail-other: no
          OrganizationAccountAccessRole, so AssumeRole of it is refused
  closed  closed (SUSPENDED)
plus `--fillers N` more ACTIVE accounts without a role (ListAccounts pages
hold at most 20).

moto accepts AssumeRole into any role and lets every account call
ListAccounts. AWS does neither; two patches make moto answer as AWS does:
  * AssumeRole of a role that does not exist in its account is refused
    with AccessDenied (once the fixture is seeded);
  * ListAccounts from a member account is AccessDeniedException, from an
    account in no organization AWSOrganizationsNotInUseException.
Nothing here reaches AWS: every client points at the local server and uses
fake credentials.
"""

import datetime as dt
import json
import os
import sys

for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(var, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

MANAGEMENT = "123456789012"
OUTSIDER = "111122223333"  # in no organization
ROLE = "OrganizationAccountAccessRole"
STRICT = {"on": False}


def patch_moto():
    from moto.iam.models import iam_backends
    from moto.organizations.exceptions import AWSOrganizationsNotInUseException
    from moto.organizations.models import OrganizationsBackend, organizations_backends
    from moto.sts.exceptions import STSClientError
    from moto.sts.models import STSBackend
    from moto.core.exceptions import JsonRESTError

    original_assume = STSBackend.assume_role

    def assume_role(self, **kwargs):
        arn = kwargs["role_arn"]
        if STRICT["on"]:
            account = arn.split(":")[4]
            name = arn.split(":role/", 1)[-1].split("/")[-1]
            roles = iam_backends[account]["global"].roles.values()
            if not any(r.name == name for r in roles):
                raise STSClientError(
                    "AccessDenied",
                    f"User: arn:aws:iam::{self.account_id}:user/org-admin is not authorized "
                    f"to perform: sts:AssumeRole on resource: {arn}",
                )
        return original_assume(self, **kwargs)

    STSBackend.assume_role = assume_role

    original_list = OrganizationsBackend.list_accounts

    def list_accounts(self, *args, **kwargs):
        if self.org is None:
            if self.account_id in organizations_backends.master_accounts:
                raise JsonRESTError(
                    "AccessDeniedException",
                    "You don't have permissions to access this resource.",
                )
            raise AWSOrganizationsNotInUseException()
        return original_list(self, *args, **kwargs)

    OrganizationsBackend.list_accounts = list_accounts


def backdate_key(account, key_id, days):
    from moto.iam.models import iam_backends

    key = iam_backends[account]["global"].access_keys[key_id]
    key.create_date = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(
        days=days
    )


def session_in(sts, account, role=ROLE):
    c = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="org-moto-seed"
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
        region_name="us-east-1",
    ), {
        "access_key_id": c["AccessKeyId"],
        "secret_access_key": c["SecretAccessKey"],
        "session_token": c["SessionToken"],
    }


def main():
    import logging

    fillers = 0
    if len(sys.argv) == 3 and sys.argv[1] == "--fillers":
        fillers = int(sys.argv[2])
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    patch_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"

    mgmt = boto3.session.Session(
        aws_access_key_id="AKIAFAKEFAKEFAKEFAKE",
        aws_secret_access_key="fake-secret-for-moto",
        region_name="us-east-1",
    )
    orgs = mgmt.client("organizations", endpoint_url=endpoint)
    sts = mgmt.client("sts", endpoint_url=endpoint)
    orgs.create_organization(FeatureSet="ALL")
    accounts = {}
    for name in ["alpha", "beta", "norole", "closed"] + [
        f"filler-{i:02}" for i in range(fillers)
    ]:
        extra = {"RoleName": "keytrail-other"} if name == "norole" else {}
        status = orgs.create_account(AccountName=name, Email=f"{name}@example.com", **extra)
        accounts[name] = status["CreateAccountStatus"]["AccountId"]
    orgs.close_account(AccountId=accounts["closed"])

    alpha, _ = session_in(sts, accounts["alpha"])
    iam = alpha.client("iam", endpoint_url=endpoint)
    iam.create_user(UserName="alpha-deploy")
    k = iam.create_access_key(UserName="alpha-deploy")["AccessKey"]["AccessKeyId"]
    backdate_key(accounts["alpha"], k, 400)

    beta, _ = session_in(sts, accounts["beta"])
    iam = beta.client("iam", endpoint_url=endpoint)
    iam.create_user(UserName="beta-ci")
    for _ in range(2):
        iam.create_access_key(UserName="beta-ci")

    norole, _ = session_in(sts, accounts["norole"], "keytrail-other")
    norole.client("iam", endpoint_url=endpoint).create_user(UserName="norole-user")

    # Credentials inside a member account and outside any organization.
    _, member = session_in(sts, accounts["alpha"])
    outside, outsider = session_in(sts, OUTSIDER)
    if outside.client("sts", endpoint_url=endpoint).get_caller_identity()["Account"] != OUTSIDER:
        raise SystemExit("the assumed role did not land in the outsider account")
    STRICT["on"] = True

    print(
        json.dumps(
            {
                "endpoint": endpoint,
                "management": MANAGEMENT,
                "accounts": accounts,
                "member": member,
                "outsider": outsider,
            }
        ),
        flush=True,
    )
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
