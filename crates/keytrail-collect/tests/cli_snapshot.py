#!/usr/bin/env python3
"""Writes a snapshot with the AWS CLI itself: the commands of
docs/snapshot-layout.md ("Collecting with the CLIs"), run through the CLI's
own driver so that every file is exactly what `aws ... > file` (or
`2>&1` where the layout says so) would save.

Usage: cli_snapshot.py OUT_DIR REGION...

Credentials, region and AWS_ENDPOINT_URL come from the environment (the
test points them at moto). One addition to the documented commands: S3
Control prefixes the host with the account id, which an IP-address
endpoint cannot serve, so a request hook strips the prefix before signing.
"""

import contextlib
import io
import json
import os
import sys

from awscli.clidriver import create_clidriver


def run(args, with_stderr=False):
    """Runs one CLI command; returns (exit code, what the shell would save)."""
    driver = create_clidriver()
    account = os.environ.get("KEYTRAIL_TEST_ACCOUNT", "")

    def strip_account_prefix(request, **_):
        request.url = request.url.replace(f"//{account}.", "//", 1)

    driver.session.register("before-sign.s3-control.*", strip_account_prefix)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = driver.main(args + ["--output", "json"])
    text = out.getvalue() + (err.getvalue() if with_stderr else "")
    if rc != 0 and not with_stderr:
        sys.stderr.write(f"aws {' '.join(args)}: {err.getvalue()}")
    return rc, text


def save(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def query(args):
    rc, text = run(args)
    if rc != 0:
        raise SystemExit(f"aws {' '.join(args)} failed")
    return json.loads(text)


def main():
    out = os.path.join(sys.argv[1], "aws")
    regions = sys.argv[2:]
    save(f"{out}/sts-get-caller-identity.json", run(["sts", "get-caller-identity"])[1])
    acct = query(["sts", "get-caller-identity"])["Account"]
    os.environ["KEYTRAIL_TEST_ACCOUNT"] = acct
    save(
        f"{out}/organizations-describe-organization.json",
        run(["organizations", "describe-organization"], with_stderr=True)[1],
    )
    run(["iam", "generate-credential-report"])
    save(f"{out}/iam-get-credential-report.json", run(["iam", "get-credential-report"])[1])
    save(
        f"{out}/iam-get-account-authorization-details.json",
        run(["iam", "get-account-authorization-details"])[1],
    )
    os.makedirs(f"{out}/iam-list-access-keys", exist_ok=True)
    for user in query(["iam", "list-users"])["Users"]:
        name = user["UserName"]
        rc, text = run(["iam", "list-access-keys", "--user-name", name])
        save(f"{out}/iam-list-access-keys/{name}.json", text)
        for key in json.loads(text)["AccessKeyMetadata"]:
            kid = key["AccessKeyId"]
            save(
                f"{out}/iam-get-access-key-last-used/{kid}.json",
                run(["iam", "get-access-key-last-used", "--access-key-id", kid])[1],
            )
    save(
        f"{out}/s3control-get-public-access-block.json",
        run(["s3control", "get-public-access-block", "--account-id", acct], with_stderr=True)[1],
    )
    rc, text = run(["s3api", "list-buckets"])
    save(f"{out}/s3api-list-buckets.json", text)
    for b in json.loads(text)["Buckets"]:
        for c in (
            "get-public-access-block",
            "get-bucket-policy-status",
            "get-bucket-acl",
            "get-bucket-ownership-controls",
            "get-bucket-policy",
        ):
            save(
                f"{out}/s3api/{b['Name']}/{c}.json",
                run(["s3api", c, "--bucket", b["Name"]], with_stderr=True)[1],
            )
    for r in regions:
        d = f"{out}/regions/{r}"
        save(f"{d}/ec2-describe-instances.json", run(["ec2", "describe-instances", "--region", r])[1])
        save(
            f"{d}/ec2-get-instance-metadata-defaults.json",
            run(["ec2", "get-instance-metadata-defaults", "--region", r])[1],
        )
        save(
            f"{d}/secretsmanager-list-secrets.json",
            run(["secretsmanager", "list-secrets", "--region", r])[1],
        )
        save(
            f"{d}/ssm-describe-parameters.json",
            run(["ssm", "describe-parameters", "--region", r])[1],
        )
        rc, text = run(["eks", "list-clusters", "--region", r])
        save(f"{d}/eks-list-clusters.json", text)
        for c in json.loads(text)["clusters"]:
            save(
                f"{d}/eks-describe-cluster/{c}.json",
                run(["eks", "describe-cluster", "--region", r, "--name", c])[1],
            )
            os.makedirs(f"{d}/eks-describe-nodegroup/{c}", exist_ok=True)
            groups = query(["eks", "list-nodegroups", "--region", r, "--cluster-name", c])
            for ng in groups["nodegroups"]:
                save(
                    f"{d}/eks-describe-nodegroup/{c}/{ng}.json",
                    run(
                        [
                            "eks",
                            "describe-nodegroup",
                            "--region",
                            r,
                            "--cluster-name",
                            c,
                            "--nodegroup-name",
                            ng,
                        ]
                    )[1],
                )


if __name__ == "__main__":
    main()
