#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

Seeds are small valid inputs of each format, built here (no fixture is
copied from elsewhere) so the fuzzer starts from structure. The first byte
of most inputs is a selector (see crates/keytrail-fuzz/src/lib.rs). The
committed corpora are these seeds plus what `cargo fuzz cmin` kept.
No seed holds anything that looks like a real credential.
"""
import gzip, hashlib, io, json, os, sys, tarfile, zipfile, zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def tar_of(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_of(members, method=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


TEXT = b"API_KEY = not-a-secret-placeholder\npassword: example\n"

# archive: selector 0 tar, 1 tar.gz, 2 gz, 3 txt, 4 tgz, 5 jar
put("archive", "tar", b"\x00" + tar_of([("a.txt", TEXT), ("d/b.env", b"X=1\n")]))
put("archive", "targz", b"\x01" + gzip.compress(tar_of([("a.txt", TEXT)]), mtime=0))
put("archive", "gz", b"\x02" + gzip.compress(TEXT, mtime=0))
put("archive", "utf16", b"\x03" + b"\xff\xfe" + TEXT.decode().encode("utf-16-le"))
put("archive", "nested", b"\x00" + tar_of([("in.zip", zip_of([("x.txt", TEXT)]))]))
put("archive", "jar", b"\x05" + zip_of([("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n")]))

# zip
put("zip", "deflated", zip_of([("a.txt", TEXT), ("dir/", b""), ("b.txt", b"b\n")]))
put("zip", "stored", zip_of([("a.txt", TEXT)], zipfile.ZIP_STORED))
put("zip", "nested", zip_of([("inner.zip", zip_of([("x.txt", TEXT)]))]))


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


layer = tar_of([("etc/app.conf", TEXT)])
layer_gz = gzip.compress(layer, mtime=0)
config = json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/bin", "MODE=test"]},
    "rootfs": {"type": "layers", "diff_ids": [sha(layer)]},
    "history": [{"created_by": "COPY app.conf /etc/"}],
}).encode()
# docker-archive (selector even)
docker = tar_of([
    ("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["app:1"], "Layers": ["l/layer.tar"]}]).encode()),
    ("config.json", config),
    ("l/layer.tar", layer),
])
put("image_archive", "docker", b"\x00" + docker)
# oci-archive (selector odd)
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(layer_gz), "size": len(layer_gz)}],
}).encode()
index = json.dumps({
    "schemaVersion": 2,
    "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest),
                   "annotations": {"org.opencontainers.image.ref.name": "1"}}],
}).encode()
blob = lambda d: ("blobs/sha256/" + hashlib.sha256(d).hexdigest(), d)
oci = tar_of([("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), ("index.json", index),
              blob(manifest), blob(config), blob(layer_gz)])
put("image_archive", "oci", b"\x01" + oci)

# git_object: selector 0 raw loose file, 1 commit, 2 tree, 3 blob
commit = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@example.com> 0 +0000\ncommitter A <a@example.com> 0 +0000\n\nmessage\n"
put("git_object", "commit", b"\x01" + commit)
tree = b"100644 a.txt\x00" + bytes.fromhex("ab" + "cd" * 19) + b"40000 d\x00" + bytes(20)
put("git_object", "tree", b"\x02" + tree)
put("git_object", "blob", b"\x03" + TEXT)
put("git_object", "loose", b"\x00" + zlib.compress(b"blob %d\x00" % len(TEXT) + TEXT))

# rule_yaml
put("rule_yaml", "rule", b"""provider: Example
rules:
  - id: example.token
    name: Example token
    pattern: '\\b(exq_[a-z0-9]{24})\\b'
    keywords: [exq_]
    confidence: high
    severity: medium
    description: A token format used only as a fuzz seed.
    remediation: Nothing to revoke.
    references: [https://example.com/token]
    categories: [testing]
    examples: ['TOKEN=exq_aaaaaaaaaaaaaaaaaaaaaaaa']
    negative_examples: ['TOKEN=exq_short']
""")
put("rule_yaml", "anchors", b"x: &a [1, 2]\ny: *a\nrules: [{id: a, <<: {name: b}}]\n")

# workflow_yaml: selector 0 workflow, 1 action, 2 .gitlab-ci.yml, 3 included file
put("workflow_yaml", "github", b"\x00" + b"""on: [push, pull_request_target]
permissions: write-all
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with: {ref: '${{ github.event.pull_request.head.sha }}'}
      - run: echo "${{ secrets.DEPLOY_TOKEN }}" && curl -H "x: ${{ github.event.issue.title }}" x
        env: {AWS_SECRET_ACCESS_KEY: '${{ secrets.AWS }}'}
""")
put("workflow_yaml", "action", b"\x01" + b"""name: a
runs:
  using: composite
  steps:
    - run: echo ${{ inputs.token }}
      shell: bash
""")
put("workflow_yaml", "gitlab", b"\x02" + b"""include:
  - local: ci/*.yml
  - remote: https://example.com/x.yml
.base: &base
  script: [echo $DEPLOY_TOKEN]
deploy:
  <<: *base
  extends: .base
  stage: deploy
""")
put("workflow_yaml", "included", b"\x03" + b"job:\n  script:\n    - aws configure set aws_secret_access_key $PROD_SECRET\n")

# snapshot_json: the selector picks the file (see lib.rs)
auth = {"UserDetailList": [{"UserName": "ci", "Arn": "arn:aws:iam::111122223333:user/ci", "CreateDate": "2020-01-01T00:00:00Z",
                            "GroupList": ["g"], "AttachedManagedPolicies": [{"PolicyName": "AdministratorAccess", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}],
                            "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]}}]}],
        "GroupDetailList": [{"GroupName": "g", "Arn": "arn:aws:iam::111122223333:group/g", "GroupPolicyList": [], "AttachedManagedPolicies": []}],
        "RoleDetailList": [{"RoleName": "r", "Arn": "arn:aws:iam::111122223333:role/r", "Path": "/", "CreateDate": "2020-01-01T00:00:00Z",
                            "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "sts:AssumeRole"}]},
                            "RolePolicyList": [], "AttachedManagedPolicies": []}],
        "Policies": []}
put("snapshot_json", "authz", b"\x00" + json.dumps(auth).encode())
put("snapshot_json", "report", b"\x01" + b"user,arn,user_creation_time,password_enabled,access_key_1_active,access_key_1_last_rotated\nci,arn:aws:iam::111122223333:user/ci,2020-01-01T00:00:00+00:00,false,true,2020-01-01T00:00:00+00:00\n")
put("snapshot_json", "buckets", b"\x02" + b'{"Buckets": [{"Name": "b", "CreationDate": "2020-01-01T00:00:00+00:00"}, {"Name": "../x"}]}')
put("snapshot_json", "keys", b"\x03" + b'{"AccessKeyMetadata": [{"UserName": "ci", "AccessKeyId": "AKIAEXAMPLEEXAMPLE00", "Status": "Active", "CreateDate": "2020-01-01T00:00:00Z"}]}')
put("snapshot_json", "eks", b"\x04" + b'{"clusters": ["c1", "../c2"]}')
put("snapshot_json", "gcp_policy", b"\x05" + b'{"bindings": [{"role": "roles/owner", "members": ["serviceAccount:sa@p.iam.gserviceaccount.com", "allUsers"]}]}')
put("snapshot_json", "azure_accounts", b"\x07" + b'[{"name": "acct", "id": "/subscriptions/x", "allowBlobPublicAccess": true}]')
put("snapshot_json", "cli_error", b"\x09" + b"An error occurred (AccessDenied) when calling the ListAccounts operation\n")

# redact_stream: selector picks the read size; the known value is in lib.rs
put("redact_stream", "log", b"\x00" + b"\x1b[32m2024-05-01T12:00:00.000Z\x1b[0m using kt-fuzz-known-value-7Q2x now\nnext line\n")
put("redact_stream", "split", b"\x01" + b"kt-fuzz-\x1b[31mknown-value\x1b[0m-7Q2x\r\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
put("redact_stream", "utf16", b"\x02" + "password=hunter2-but-longer kt-fuzz-known-value-7Q2x\r\n".encode("utf-16-le"))
put("redact_stream", "encoded", b"\x03" + b"a3QtZnV6ei1rbm93bi12YWx1ZS03UTJ4 6b742d66757a7a2d6b6e6f776e2d76616c75652d37513278 kt%2Dfuzz\n")

# cloudtrail: the readers sniff the layout themselves (no selector byte)
_rec = json.dumps({"eventVersion": "1.08", "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/u", "accessKeyId": "AKIAEXAMPLEEXAMPLE00"}, "eventTime": "2024-05-01T10:00:00Z", "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2.15.0", "requestParameters": {"bucketName": "b", "key": "a\\u00e9"}, "eventID": "e1"})
put("cloudtrail", "records", ('{"Records":[' + _rec + "," + _rec + '],"x":[1,{"y":"]"}]}').encode())
put("cloudtrail", "array_pretty", ("[\n " + _rec + ",\n 7,\n {\"eventTime\": tru}\n]\n").encode())
put("cloudtrail", "ndjson_prefixed", ("2024-05-01T10:00:00.000Z " + _rec + "\n" + _rec + "\n").encode())
put("cloudtrail", "lookup_events", json.dumps({"Events": [{"EventId": "e1", "CloudTrailEvent": _rec}]}).encode())
put("cloudtrail", "eventbridge", json.dumps({"detail-type": "AWS API Call via CloudTrail", "detail": json.loads(_rec)}).encode())
put("cloudtrail", "gzip", gzip.compress(('{"Records":[' + _rec + "]}").encode(), mtime=0))
put("cloudtrail", "stray_closer", b"[}")
put("cloudtrail", "records_stray", b'{"Records":[}')
# cloudtrail (the same readers): the other clouds' records and envelopes
_gcp = json.dumps({"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", "authenticationInfo": {"principalEmail": "sa@p.iam.gserviceaccount.com", "serviceAccountKeyName": "//iam.googleapis.com/projects/p/serviceAccounts/sa@p.iam.gserviceaccount.com/keys/0123abcd"}, "requestMetadata": {"callerIp": "203.0.113.7", "callerSuppliedUserAgent": "gcloud"}, "serviceName": "compute.googleapis.com", "methodName": "v1.compute.instances.insert", "status": {"code": 7}}, "insertId": "i1", "resource": {"type": "gce_instance", "labels": {"project_id": "p", "zone": "us-central1-a"}}, "timestamp": "2024-05-01T10:00:00.123456Z", "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity"})
put("cloudtrail", "gcp_gcloud", ("[\n" + _gcp + ",\n" + _gcp + "\n]\n").encode())
import base64 as _b64
put("cloudtrail", "gcp_pubsub", (json.dumps({"message": {"data": _b64.b64encode(_gcp.encode()).decode(), "messageId": "1"}, "subscription": "s"}) + "\n" + json.dumps({"message": {"data": "%%"}}) + "\n").encode())
_signin = {"id": "s1", "createdDateTime": "2024-05-01T10:00:00.1234567Z", "userPrincipalName": "A@corp.example", "ipAddress": "203.0.113.7", "status": {"errorCode": 0}, "location": {"countryOrRegion": "US"}}
put("cloudtrail", "entra_graph", json.dumps({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns", "value": [_signin, {"id": "s2", "createdDateTime": "2024-05-01T10:00:01Z", "servicePrincipalId": "sp1", "servicePrincipalCredentialKeyId": "k1", "ipAddress": "203.0.113.8"}]}).encode())
put("cloudtrail", "entra_diag", json.dumps({"records": [{"time": "2024-05-01T10:00:00Z", "category": "AuditLogs", "operationName": "Add service principal credentials", "properties": {"activityDisplayName": "Add service principal credentials", "activityDateTime": "2024-05-01T10:00:00Z", "initiatedBy": {"user": {"userPrincipalName": "a@corp.example", "ipAddress": "203.0.113.7"}}, "targetResources": [{"id": "sp1", "modifiedProperties": [{"displayName": "KeyDescription", "newValue": "[\"[KeyIdentifier=k1,KeyType=Password]\"]"}]}]}}]}).encode())
_ual = {"CreationTime": "2024-05-01T10:00:00", "Id": "u1", "Operation": "New-InboxRule", "OrganizationId": "t1", "RecordType": 1, "ResultStatus": "True", "UserId": "a@corp.example", "Workload": "Exchange", "ClientIP": "[2001:db8::1]:443", "Parameters": [{"Name": "MoveToFolder", "Value": "RSS Feeds"}, {"Name": "From", "Value": "it@corp.example"}]}
put("cloudtrail", "m365_api", json.dumps([_ual, {"CreationTime": "bad"}]).encode())
put("cloudtrail", "m365_purview_csv", ("RecordId,CreationDate,RecordType,Operation,UserId,AuditData\r\nu1,2024-05-01T10:00:00,1,New-InboxRule,a@corp.example,\"" + json.dumps(_ual).replace('"', '""') + "\"\r\nu2,x,1,y,z,\"{\"\r\n").encode())
put("cloudtrail", "azure_activity", json.dumps([{"caller": "a@corp.example", "eventTimestamp": "2024-05-01T10:00:00Z", "eventDataId": "e1", "operationName": {"value": "Microsoft.Compute/virtualMachines/write"}, "httpRequest": {"clientIpAddress": "203.0.113.7"}, "status": {"value": "Failed"}, "subscriptionId": "s1"}]).encode())
# cloudtrail_csv: rows after a fixed CloudTrail header (see lib.rs)
put("cloudtrail_csv", "athena", b'1.08,"{type=IAMUser, arn=arn:aws:iam::111122223333:user/u, accesskeyid=AKIAEXAMPLEEXAMPLE00, sessioncontext={attributes={mfaauthenticated=false}}}",2024-05-01T10:00:00Z,s3.amazonaws.com,GetObject,eu-west-1,203.0.113.7,[aws-cli/2.15.0],"{""bucketName"":""b""}",\n')
put("cloudtrail_csv", "python_dict", b"1.08,\"{'type': 'IAMUser', 'arn': 'arn:aws:iam::1:user/u', 'mfa': True}\",2024-05-01T10:00:00Z,iam.amazonaws.com,ListUsers,us-east-1,203.0.113.7,Boto3/1.34,None,None\n")
put("cloudtrail_csv", "unterminated", b'1.08,"{type=IAMUser\n')
print("seeds written to", ROOT, file=sys.stderr)
