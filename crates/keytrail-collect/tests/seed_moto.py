#!/usr/bin/env python3
"""Starts moto on 127.0.0.1 (a free port), seeds two AWS accounts with a
positive and a negative case for every AWS posture check of keytrail, and
prints one JSON line: the endpoint, the credentials of each account and the
expected findings. It then serves until its standard input closes.

Used by crates/keytrail-collect/tests/moto.rs. Nothing here reaches AWS:
every client points at the local server and uses fake credentials.

moto runs in this process (moto.server.ThreadedMotoServer) so that the
fixture can reach state the public API cannot set:
  * access-key creation and last-used dates (AWS sets them; ages are the
    point of two checks), set on moto's IAM models;
  * the `<root_account>` row of the credential report, which AWS always
    includes and moto omits;
  * Secrets Manager's LastAccessedDate (moto always answers null) and
    past creation, rotation and parameter-change dates;
  * two APIs moto does not implement, answered in the documented wire
    format: ec2 GetInstanceMetadataDefaults and s3 GetBucketPolicyStatus
    (IsPublic computed as AWS documents it for the simple policies here:
    an Allow to Principal "*" without conditions).
"""

import datetime as dt
import json
import os
import sys

os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(var, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

ACCOUNT_A = "123456789012"  # moto's default account: organization management account
ACCOUNT_B = "210987654321"  # a member account, reached through an assumed role
VENDOR = "464622532012"  # Datadog, in keytrail's known_aws_accounts facts
UNKNOWN = "999988887777"  # in no facts file
NOW = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)

EXPECT = []  # {"account", "check", "resource", "fire"}


def expect(account, check, resource, fire):
    EXPECT.append(
        {"account": account, "check": check, "resource": resource, "fire": fire}
    )


def days_ago(n):
    return NOW - dt.timedelta(days=n)


# --- moto extensions -------------------------------------------------------

IMDS_DEFAULTS = {}  # (account, region) -> {"httpTokens": ...}
ROOT_KEYS = {}  # account -> bool (root has an active access key)


def patch_moto():
    from moto.ec2.responses import EC2Response
    from moto.iam import models as iam_models
    from moto.s3.responses import S3Response

    def get_instance_metadata_defaults(self):
        fields = IMDS_DEFAULTS.get((self.current_account, self.region), {})
        inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
        return (
            '<GetInstanceMetadataDefaultsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            "<requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>"
            f"<accountLevel>{inner}</accountLevel>"
            "</GetInstanceMetadataDefaultsResponse>"
        )

    EC2Response.get_instance_metadata_defaults = get_instance_metadata_defaults

    original_get = S3Response._bucket_response_get

    def bucket_get(self, bucket_name, querystring):
        if "policyStatus" not in querystring:
            return original_get(self, bucket_name, querystring)
        policy = self.backend.get_bucket_policy(bucket_name)
        if not policy:
            body = (
                '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucketPolicy</Code>'
                "<Message>The bucket policy does not exist</Message>"
                f"<BucketName>{bucket_name}</BucketName></Error>"
            )
            return 404, {}, body
        doc = json.loads(policy)
        public = any(
            s.get("Effect") == "Allow"
            and not s.get("Condition")
            and (s.get("Principal") == "*" or s.get("Principal", {}).get("AWS") == "*")
            for s in doc.get("Statement", [])
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<PolicyStatus xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<IsPublic>{'true' if public else 'false'}</IsPublic></PolicyStatus>"
        )
        return 200, {}, body

    S3Response._bucket_response_get = bucket_get

    original_report = iam_models.IAMBackend.get_credential_report

    def get_credential_report(self):
        report = original_report(self)
        header, _, rows = report.partition("\n")
        key = "true" if ROOT_KEYS.get(self.account_id) else "false"
        rotated = days_ago(30).strftime("%Y-%m-%dT%H:%M:%S+00:00") if key == "true" else "N/A"
        created = days_ago(1000).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        root = (
            f"<root_account>,arn:aws:iam::{self.account_id}:root,{created},not_supported,"
            f"{created},not_supported,not_supported,true,{key},{rotated},N/A,N/A,N/A,"
            "false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"
        )
        return f"{header}\n{root}\n{rows}"

    iam_models.IAMBackend.get_credential_report = get_credential_report

    from moto.secretsmanager import models as sm_models

    original_to_dict = sm_models.FakeSecret.to_dict

    def secret_to_dict(self):
        d = original_to_dict(self)
        if self.arn in SECRET_ACCESSED:
            d["LastAccessedDate"] = SECRET_ACCESSED[self.arn]
        return d

    sm_models.FakeSecret.to_dict = secret_to_dict


def iam_backend(account):
    from moto.iam.models import iam_backends

    return iam_backends[account]["global"]


def backdate_key(account, key_id, created_days, used_days=None):
    from moto.iam.models import AccessKeyLastUsed

    backend = iam_backend(account)
    key = backend.access_keys[key_id]
    key.create_date = days_ago(created_days)
    key.last_used = (
        None
        if used_days is None
        else AccessKeyLastUsed(
            timestamp=days_ago(used_days), service="s3", region="us-east-1"
        )
    )


# --- scenario --------------------------------------------------------------


def policy(statements):
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def trust_service(service):
    return policy(
        [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    )


def trust_account(account, external_id=None):
    st = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "sts:AssumeRole",
    }
    if external_id:
        st["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return policy([st])


def seed_iam_users(acct, iam):
    arn = lambda name: f"arn:aws:iam::{acct}:user/{name}"  # noqa: E731

    def user_with_keys(name, n=1):
        iam.create_user(UserName=name)
        return [
            iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
            for _ in range(n)
        ]

    (k,) = user_with_keys("old-key-user")
    backdate_key(acct, k, created_days=400, used_days=1)
    expect(acct, "aws.iam.access_key_age", arn("old-key-user"), True)
    expect(acct, "aws.iam.access_key_unused", arn("old-key-user"), False)

    (k,) = user_with_keys("fresh-key-user")
    backdate_key(acct, k, created_days=30, used_days=1)
    expect(acct, "aws.iam.access_key_age", arn("fresh-key-user"), False)
    expect(acct, "aws.iam.access_key_unused", arn("fresh-key-user"), False)

    (k,) = user_with_keys("idle-key-user")
    backdate_key(acct, k, created_days=200, used_days=120)
    expect(acct, "aws.iam.access_key_unused", arn("idle-key-user"), True)
    expect(acct, "aws.iam.access_key_age", arn("idle-key-user"), False)

    (k,) = user_with_keys("never-used-user")
    backdate_key(acct, k, created_days=100)
    expect(acct, "aws.iam.access_key_unused", arn("never-used-user"), True)

    (k,) = user_with_keys("new-unused-user")
    backdate_key(acct, k, created_days=10)
    expect(acct, "aws.iam.access_key_unused", arn("new-unused-user"), False)

    k1, k2 = user_with_keys("two-keys-user", 2)
    backdate_key(acct, k1, created_days=20, used_days=1)
    backdate_key(acct, k2, created_days=5, used_days=1)
    expect(acct, "aws.iam.two_active_keys", arn("two-keys-user"), True)

    k1, k2 = user_with_keys("rotated-user", 2)
    backdate_key(acct, k1, created_days=20, used_days=1)
    backdate_key(acct, k2, created_days=5, used_days=1)
    iam.update_access_key(UserName="rotated-user", AccessKeyId=k1, Status="Inactive")
    expect(acct, "aws.iam.two_active_keys", arn("rotated-user"), False)

    iam.create_user(UserName="console-nomfa")
    iam.create_login_profile(UserName="console-nomfa", Password="Fake-Passw0rd-For-Moto!")
    expect(acct, "aws.iam.console_user_without_mfa", arn("console-nomfa"), True)

    iam.create_user(UserName="console-mfa")
    iam.create_login_profile(UserName="console-mfa", Password="Fake-Passw0rd-For-Moto!")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="console-mfa")[
        "VirtualMFADevice"
    ]["SerialNumber"]
    iam.enable_mfa_device(
        UserName="console-mfa",
        SerialNumber=serial,
        AuthenticationCode1="123456",
        AuthenticationCode2="654321",
    )
    expect(acct, "aws.iam.console_user_without_mfa", arn("console-mfa"), False)
    expect(acct, "aws.iam.console_user_without_mfa", arn("old-key-user"), False)

    # A user with an access key and AdministratorAccess: a machine credential
    # that reaches everything. The key users above have no policies.
    user_with_keys("admin-key-user")
    iam.attach_user_policy(
        UserName="admin-key-user", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"
    )
    expect(acct, "aws.iam.machine_identity_admin", arn("admin-key-user"), True)
    expect(acct, "aws.iam.machine_identity_admin", arn("old-key-user"), False)


def seed_iam_roles(acct, iam):
    arn = lambda name: f"arn:aws:iam::{acct}:role/{name}"  # noqa: E731
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    # A vendor's typical monitoring grant.
    monitoring = policy(
        [
            {
                "Effect": "Allow",
                "Action": ["ec2:Describe*", "cloudwatch:GetMetricData", "tag:GetResources"],
                "Resource": "*",
            }
        ]
    )

    def role(name, trust, managed=(), inline=None):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
        for p in managed:
            iam.attach_role_policy(RoleName=name, PolicyArn=p)
        if inline:
            iam.put_role_policy(RoleName=name, PolicyName=f"{name}-inline", PolicyDocument=inline)

    role("vendor-no-extid", trust_account(VENDOR), inline=monitoring)
    expect(acct, "aws.iam.third_party_role_without_external_id", arn("vendor-no-extid"), True)
    expect(acct, "aws.iam.trust_unknown_external_account", arn("vendor-no-extid"), False)
    expect(acct, "aws.iam.third_party_role_overprivileged", arn("vendor-no-extid"), False)

    role("vendor-with-extid", trust_account(VENDOR, "fake-external-id"), [admin])
    expect(acct, "aws.iam.third_party_role_without_external_id", arn("vendor-with-extid"), False)
    expect(acct, "aws.iam.third_party_role_overprivileged", arn("vendor-with-extid"), True)

    # Data read (the managed ReadOnlyAccess, as moto loads it from AWS's
    # published document) against metadata read (SecurityAudit).
    role(
        "vendor-data-read",
        trust_account(VENDOR, "fake-external-id"),
        ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    )
    expect(acct, "aws.iam.third_party_role_data_read", arn("vendor-data-read"), True)
    expect(acct, "aws.iam.third_party_role_overprivileged", arn("vendor-data-read"), False)
    role(
        "vendor-security-audit",
        trust_account(VENDOR, "fake-external-id"),
        ["arn:aws:iam::aws:policy/SecurityAudit"],
    )
    expect(acct, "aws.iam.third_party_role_data_read", arn("vendor-security-audit"), False)
    expect(acct, "aws.iam.third_party_role_overprivileged", arn("vendor-security-audit"), False)

    role("unknown-trust", trust_account(UNKNOWN, "fake-external-id"), inline=monitoring)
    expect(acct, "aws.iam.third_party_role_without_external_id", arn("unknown-trust"), False)
    expect(acct, "aws.iam.trust_unknown_external_account", arn("unknown-trust"), True)

    role("ec2-admin", trust_service("ec2.amazonaws.com"), [admin])
    expect(acct, "aws.iam.workload_admin", arn("ec2-admin"), True)

    narrow = policy(
        [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::app-data/*"}]
    )
    role("ec2-narrow", trust_service("ec2.amazonaws.com"), inline=narrow)
    for check in (
        "aws.iam.workload_admin",
        "aws.iam.workload_privilege_escalation",
        "aws.iam.workload_ssm_all_instances",
        "aws.iam.workload_s3_read_all",
    ):
        expect(acct, check, arn("ec2-narrow"), False)

    escalate = policy([{"Effect": "Allow", "Action": "iam:CreatePolicyVersion", "Resource": "*"}])
    role("lambda-escalate", trust_service("lambda.amazonaws.com"), inline=escalate)
    expect(acct, "aws.iam.workload_privilege_escalation", arn("lambda-escalate"), True)
    expect(acct, "aws.iam.workload_admin", arn("lambda-escalate"), False)

    ssm = policy([{"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": "*"}])
    role("ecs-ssm", trust_service("ecs-tasks.amazonaws.com"), inline=ssm)
    expect(acct, "aws.iam.workload_ssm_all_instances", arn("ecs-ssm"), True)

    ssm_scoped = policy(
        [
            {
                "Effect": "Allow",
                "Action": "ssm:SendCommand",
                "Resource": f"arn:aws:ec2:us-east-1:{acct}:instance/i-0123456789abcdef0",
            }
        ]
    )
    role("ecs-ssm-scoped", trust_service("ecs-tasks.amazonaws.com"), inline=ssm_scoped)
    expect(acct, "aws.iam.workload_ssm_all_instances", arn("ecs-ssm-scoped"), False)

    s3_all = policy([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}])
    role("lambda-s3-all", trust_service("lambda.amazonaws.com"), inline=s3_all)
    expect(acct, "aws.iam.workload_s3_read_all", arn("lambda-s3-all"), True)

    # EKS node roles.
    role("risky-node-role", trust_service("ec2.amazonaws.com"), [admin])
    role(
        "standard-node-role",
        trust_service("ec2.amazonaws.com"),
        [
            "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
            "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        ],
    )

    # Machine identities beyond workloads: a CI role assumed through GitHub
    # Actions' OIDC provider that can escalate (iam:PassRole and
    # ec2:RunInstances on *), a scoped one, and a CodeBuild role nobody has
    # used in the 200 days since it was made.
    provider = iam.create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com",
        ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=["6938fd4d98bab03faadb97b34396831e3780aea1"],
    )["OpenIDConnectProviderArn"]
    oidc = policy(
        [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringLike": {"token.actions.githubusercontent.com:sub": "repo:example/*"}
                },
            }
        ]
    )
    pass_run = policy(
        [{"Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"}]
    )
    role("gh-actions-deploy", oidc, inline=pass_run)
    expect(acct, "aws.iam.machine_identity_privilege_escalation", arn("gh-actions-deploy"), True)
    expect(acct, "aws.iam.machine_identity_admin", arn("gh-actions-deploy"), False)
    # New and never used: not yet unused.
    expect(acct, "aws.iam.machine_role_unused", arn("gh-actions-deploy"), False)
    role("gh-actions-assets", oidc, inline=narrow)
    expect(acct, "aws.iam.machine_identity_privilege_escalation", arn("gh-actions-assets"), False)
    role("codebuild-old", trust_service("codebuild.amazonaws.com"), inline=narrow)
    iam_backend(acct).get_role("codebuild-old").create_date = days_ago(200)
    expect(acct, "aws.iam.machine_role_unused", arn("codebuild-old"), True)


def seed_s3(acct, session, endpoint, prefix, account_pab):
    s3 = session.client("s3", endpoint_url=endpoint)
    s3control = session.client("s3control", endpoint_url=endpoint)

    # The S3 Control endpoint rules prefix the host with `ACCOUNT.`, which
    # an IP-address endpoint cannot serve: strip it before signing.
    def strip_account_prefix(request, **_):
        request.url = request.url.replace(f"//{acct}.", "//", 1)

    s3control.meta.events.register("before-sign.s3-control.*", strip_account_prefix)
    s3control.put_public_access_block(
        AccountId=acct, PublicAccessBlockConfiguration=account_pab
    )
    full = all(account_pab.values())
    expect(acct, "aws.s3.account_public_access_block", f"arn:aws:s3:::account/{acct}", not full)

    def bucket(name):
        s3.create_bucket(Bucket=name)
        return f"arn:aws:s3:::{name}"

    b = bucket(f"{prefix}-public-policy")
    s3.put_bucket_policy(
        Bucket=f"{prefix}-public-policy",
        Policy=policy(
            [
                {
                    "Sid": "PublicRead",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{prefix}-public-policy/*",
                }
            ]
        ),
    )
    expect(acct, "aws.s3.bucket_public", b, not full)
    if not full:
        expect(acct, "aws.s3.bucket_public_access_block", b, True)

    b = bucket(f"{prefix}-public-acl")
    s3.put_bucket_ownership_controls(
        Bucket=f"{prefix}-public-acl",
        OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]},
    )
    s3.put_bucket_acl(Bucket=f"{prefix}-public-acl", ACL="public-read")
    expect(acct, "aws.s3.bucket_public", b, not full)

    # Public ACL grants, but ACLs are disabled by BucketOwnerEnforced.
    b = bucket(f"{prefix}-acl-enforced")
    s3.put_bucket_acl(Bucket=f"{prefix}-acl-enforced", ACL="public-read")
    s3.put_bucket_ownership_controls(
        Bucket=f"{prefix}-acl-enforced",
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    )
    expect(acct, "aws.s3.bucket_public", b, False)

    # A public policy neutralised by the bucket's own Block Public Access.
    name = f"{prefix}-blocked"
    b = bucket(name)
    s3.put_bucket_policy(
        Bucket=name,
        Policy=policy(
            [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{name}/*",
                }
            ]
        ),
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    expect(acct, "aws.s3.bucket_public", b, False)
    expect(acct, "aws.s3.bucket_public_access_block", b, False)


def seed_ec2(acct, session, endpoint, tag):
    ids = {}
    for region, tokens in (("us-east-1", "optional"), ("eu-west-1", "required")):
        ec2 = session.client("ec2", endpoint_url=endpoint, region_name=region)
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        out = ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            MetadataOptions={"HttpTokens": tokens, "HttpEndpoint": "enabled"},
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"{tag}-{tokens}"}]}
            ],
        )
        iid = out["Instances"][0]["InstanceId"]
        ids[region] = iid
        expect(
            acct,
            "aws.ec2.imdsv1_allowed",
            f"arn:aws:ec2:{region}:{acct}:instance/{iid}",
            tokens == "optional",
        )
    IMDS_DEFAULTS[(acct, "us-east-1")] = {"httpTokens": "required", "httpEndpoint": "enabled"}
    IMDS_DEFAULTS[(acct, "eu-west-1")] = {}
    expect(
        acct,
        "aws.ec2.imds_account_default",
        f"arn:aws:ec2:us-east-1:{acct}:instance-metadata-defaults",
        False,
    )
    expect(
        acct,
        "aws.ec2.imds_account_default",
        f"arn:aws:ec2:eu-west-1:{acct}:instance-metadata-defaults",
        True,
    )


def seed_eks(acct, session, endpoint):
    eks = session.client("eks", endpoint_url=endpoint, region_name="us-east-1")
    role_arn = f"arn:aws:iam::{acct}:role/risky-node-role"
    pub = eks.create_cluster(
        name="public-eks",
        roleArn=role_arn,
        resourcesVpcConfig={
            "subnetIds": ["subnet-0a1b2c3d"],
            "endpointPublicAccess": True,
            "publicAccessCidrs": ["0.0.0.0/0"],
        },
        logging={"clusterLogging": [{"types": ["audit"], "enabled": False}]},
    )["cluster"]["arn"]
    priv = eks.create_cluster(
        name="private-eks",
        roleArn=role_arn,
        resourcesVpcConfig={
            "subnetIds": ["subnet-0a1b2c3d"],
            "endpointPublicAccess": False,
            "endpointPrivateAccess": True,
        },
        # Audit sits in the second entry: every entry must be read.
        logging={
            "clusterLogging": [
                {"types": ["api", "authenticator"], "enabled": False},
                {"types": ["audit"], "enabled": True},
            ]
        },
    )["cluster"]["arn"]
    expect(acct, "aws.eks.public_endpoint", pub, True)
    expect(acct, "aws.eks.public_endpoint", priv, False)
    expect(acct, "aws.eks.audit_logging_disabled", pub, True)
    expect(acct, "aws.eks.audit_logging_disabled", priv, False)
    eks.create_nodegroup(
        clusterName="public-eks",
        nodegroupName="risky-nodes",
        subnets=["subnet-0a1b2c3d"],
        nodeRole=role_arn,
    )
    eks.create_nodegroup(
        clusterName="private-eks",
        nodegroupName="standard-nodes",
        subnets=["subnet-0a1b2c3d"],
        nodeRole=f"arn:aws:iam::{acct}:role/standard-node-role",
    )
    # The finding names the node role.
    expect(acct, "aws.eks.node_role_risky", role_arn, True)
    expect(
        acct, "aws.eks.node_role_risky", f"arn:aws:iam::{acct}:role/standard-node-role", False
    )


SECRET_ACCESSED = {}  # secret ARN -> epoch seconds of LastAccessedDate


def secrets_backend(account, region):
    from moto.secretsmanager.models import secretsmanager_backends

    return secretsmanager_backends[account][region]


def secret_model(account, region, name):
    return next(
        s for s in secrets_backend(account, region).secrets.values() if s.name == name
    )


def seed_secrets(acct, session, endpoint):
    region = "us-east-1"
    sm = session.client("secretsmanager", endpoint_url=endpoint, region_name=region)
    epoch = lambda d: int(d.replace(tzinfo=dt.timezone.utc).timestamp())  # noqa: E731

    def secret(name, rotate_days=None):
        # The value is a random fake: keytrail never reads it.
        arn = sm.create_secret(Name=name, SecretString=os.urandom(12).hex())["ARN"]
        if rotate_days:
            sm.rotate_secret(
                SecretId=name,
                RotationRules={"AutomaticallyAfterDays": rotate_days},
                RotateImmediately=False,
            )
        return arn

    # Rotation off.
    off = secret("kt/db/admin")
    SECRET_ACCESSED[off] = epoch(days_ago(1))
    expect(acct, "aws.secretsmanager.rotation_disabled", off, True)
    expect(acct, "aws.secretsmanager.rotation_overdue", off, False)
    expect(acct, "aws.secretsmanager.secret_unused", off, False)
    # Rotation on, 30 days, last rotated 100 days ago: failing.
    late = secret("kt/stripe/key", 30)
    m = secret_model(acct, region, "kt/stripe/key")
    m.created_date = epoch(days_ago(400))
    m.last_rotation_date = epoch(days_ago(100))
    SECRET_ACCESSED[late] = epoch(days_ago(1))
    expect(acct, "aws.secretsmanager.rotation_overdue", late, True)
    expect(acct, "aws.secretsmanager.rotation_disabled", late, False)
    # Rotation on and on time, but nobody has read it for 200 days.
    idle = secret("kt/legacy/ftp", 30)
    m = secret_model(acct, region, "kt/legacy/ftp")
    m.created_date = epoch(days_ago(700))
    m.last_rotation_date = epoch(days_ago(3))
    SECRET_ACCESSED[idle] = epoch(days_ago(200))
    expect(acct, "aws.secretsmanager.secret_unused", idle, True)
    expect(acct, "aws.secretsmanager.rotation_overdue", idle, False)
    expect(acct, "aws.secretsmanager.rotation_disabled", idle, False)

    ssm = session.client("ssm", endpoint_url=endpoint, region_name=region)
    p_arn = lambda n: f"arn:aws:ssm:{region}:{acct}:parameter{n}"  # noqa: E731
    ssm.put_parameter(Name="/kt/db/password", Value=os.urandom(8).hex(), Type="String")
    expect(acct, "aws.ssm.secret_in_plaintext_parameter", p_arn("/kt/db/password"), True)
    ssm.put_parameter(Name="/kt/db/password_min_length", Value="16", Type="String")
    expect(
        acct, "aws.ssm.secret_in_plaintext_parameter", p_arn("/kt/db/password_min_length"), False
    )
    ssm.put_parameter(Name="/kt/api/partnerApiKey", Value=os.urandom(8).hex(), Type="SecureString")
    ssm.put_parameter(Name="/kt/api/fresh_token", Value=os.urandom(8).hex(), Type="SecureString")
    from moto.ssm.models import ssm_backends

    params = ssm_backends[acct][region]._parameters
    params["/kt/api/partnerApiKey"][-1].last_modified_date = days_ago(500)
    expect(acct, "aws.ssm.secure_parameter_not_rotated", p_arn("/kt/api/partnerApiKey"), True)
    expect(acct, "aws.ssm.secret_in_plaintext_parameter", p_arn("/kt/api/partnerApiKey"), False)
    expect(acct, "aws.ssm.secure_parameter_not_rotated", p_arn("/kt/api/fresh_token"), False)


def seed_account(acct, session, endpoint, prefix, account_pab):
    iam = session.client("iam", endpoint_url=endpoint)
    seed_iam_users(acct, iam)
    seed_iam_roles(acct, iam)
    seed_s3(acct, session, endpoint, prefix, account_pab)
    seed_ec2(acct, session, endpoint, prefix)
    seed_eks(acct, session, endpoint)
    seed_secrets(acct, session, endpoint)


def main():
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    patch_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"

    session_a = boto3.session.Session(
        aws_access_key_id="AKIAFAKEFAKEFAKEFAKE",
        aws_secret_access_key="fake-secret-for-moto",
        region_name="us-east-1",
    )
    # Account A manages the organization; B is created as its member.
    orgs = session_a.client("organizations", endpoint_url=endpoint)
    orgs.create_organization(FeatureSet="ALL")
    orgs.create_account(AccountName="member", Email="member@example.com")
    # moto names created accounts itself; B is reached through a role
    # assumed into the fixed id, registered as a member below.
    from moto.organizations.models import organizations_backends

    organizations_backends.master_accounts[ACCOUNT_B] = (ACCOUNT_A, "aws")

    sts = session_a.client("sts", endpoint_url=endpoint)
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT_B}:role/keytrail-audit", RoleSessionName="keytrail"
    )["Credentials"]
    session_b = boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name="us-east-1",
    )
    ident = session_b.client("sts", endpoint_url=endpoint).get_caller_identity()
    if ident["Account"] != ACCOUNT_B:
        raise SystemExit(f"assumed role landed in {ident['Account']}, not {ACCOUNT_B}")

    partial = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": False,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False,
    }
    full = {k: True for k in partial}
    seed_account(ACCOUNT_A, session_a, endpoint, "kt-a", partial)
    seed_account(ACCOUNT_B, session_b, endpoint, "kt-b", full)

    ROOT_KEYS[ACCOUNT_A] = True
    ROOT_KEYS[ACCOUNT_B] = False
    expect(ACCOUNT_A, "aws.iam.root_access_key", f"arn:aws:iam::{ACCOUNT_A}:root", True)
    expect(ACCOUNT_B, "aws.iam.root_access_key", f"arn:aws:iam::{ACCOUNT_B}:root", False)
    # EC2 instances run in both accounts; only A manages the organization.
    expect(
        ACCOUNT_A, "aws.ec2.instances_in_management_account", f"arn:aws:iam::{ACCOUNT_A}:root", True
    )
    expect(
        ACCOUNT_B,
        "aws.ec2.instances_in_management_account",
        f"arn:aws:iam::{ACCOUNT_B}:root",
        False,
    )

    print(
        json.dumps(
            {
                "endpoint": endpoint,
                "accounts": {
                    ACCOUNT_A: {
                        "access_key_id": "AKIAFAKEFAKEFAKEFAKE",
                        "secret_access_key": "fake-secret-for-moto",
                    },
                    ACCOUNT_B: {
                        "access_key_id": creds["AccessKeyId"],
                        "secret_access_key": creds["SecretAccessKey"],
                        "session_token": creds["SessionToken"],
                    },
                },
                "expect": EXPECT,
            }
        ),
        flush=True,
    )
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
