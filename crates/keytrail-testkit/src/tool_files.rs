//! Realistic credential files of common tools (`.pgpass`, `.s3cfg`, editor
//! SFTP configs, framework secrets, mail and VoIP server configs …),
//! generated at test time with fresh fake secrets, and the hard negatives
//! beside them: the same shapes in files those tools do not read.

use crate::secrets::{ALNUM, FakeSecrets, HEX, LOWER_ALNUM};

/// One generated file.
#[derive(Debug, Clone)]
pub struct ToolFile {
    /// Path relative to the scanned root (as the tool keeps it).
    pub path: String,
    /// File contents.
    pub text: String,
    /// The rule expected to report each secret (`a|b`: either, as the
    /// scanner's cross-rule de-duplication keeps one), and the secret.
    pub secrets: Vec<(&'static str, String)>,
}

fn file(path: &str, text: String, secrets: Vec<(&'static str, String)>) -> ToolFile {
    ToolFile {
        path: path.to_string(),
        text,
        secrets,
    }
}

/// Every credential file kind, one file each, with fresh secrets.
pub fn credential_files(seed: u64) -> Vec<ToolFile> {
    let mut g = FakeSecrets::new(seed);
    let mut out = Vec::new();

    let a = g.chars(ALNUM, 24);
    let b = g.github_classic();
    out.push(file(
        "home/dev/.git-credentials",
        format!("https://build-bot:{a}@git.acme.io\nhttps://octo:{b}@github.com\n"),
        vec![
            ("credfile.git_credentials", a),
            ("github.pat.classic|credfile.git_credentials", b),
        ],
    ));

    let a = g.chars(ALNUM, 18);
    let b = g.chars(ALNUM, 14);
    out.push(file(
        "home/app/.pgpass",
        format!("# orders\ndb.acme.internal:5432:orders:app_rw:{a}\n*:*:*:postgres:{b}\n"),
        vec![("credfile.pgpass", a), ("credfile.pgpass", b)],
    ));

    let pair = g.aws_key_pair();
    out.push(file(
        "root/.s3cfg",
        format!(
            "[default]\naccess_key = {}\nsecret_key = {}\nhost_base = s3.amazonaws.com\nuse_https = True\n",
            pair.access_key_id, pair.secret_access_key
        ),
        vec![("credfile.s3cfg|aws.access_key.pair", pair.secret_access_key)],
    ));

    let public = crate::secrets::encode_base64(g.chars(ALNUM, 38).as_bytes());
    let private = crate::secrets::encode_base64(g.chars(ALNUM, 46).as_bytes());
    let ppk = format!(
        "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: eddsa-key-20240611\nPublic-Lines: 2\n{}\n{}\nPrivate-Lines: 1\n{private}\nPrivate-MAC: {}\n",
        &public[..32],
        &public[32..],
        g.chars(HEX, 64)
    );
    out.push(file(
        "home/dev/.ssh/deploy.ppk",
        ppk.clone(),
        vec![("private_key.putty", ppk.trim_end().to_string())],
    ));

    let a = g.chars(ALNUM, 16);
    out.push(file(
        "site/sftp-config.json",
        format!(
            "{{\n    // sftp, ftp or ftps\n    \"type\": \"sftp\",\n    \"save_before_upload\": true,\n    \"host\": \"web1.acme.io\",\n    \"user\": \"deploy\",\n    \"password\": \"{a}\",\n    \"port\": \"22\",\n    \"remote_path\": \"/var/www/\",\n}}\n"
        ),
        vec![("credfile.ftp_client_json", a)],
    ));
    let a = g.chars(ALNUM, 14);
    out.push(file(
        "site/.ftpconfig",
        format!(
            "{{\n    \"protocol\": \"ftp\",\n    \"host\": \"ftp.acme.io\",\n    \"port\": 21,\n    \"user\": \"webmaster\",\n    \"pass\": \"{a}\",\n    \"promptForPass\": false,\n    \"remote\": \"/\"\n}}\n"
        ),
        vec![("credfile.ftp_client_json", a)],
    ));
    let a = g.chars(ALNUM, 15);
    out.push(file(
        "theme/.remote-sync.json",
        format!(
            "{{\n  \"transport\": \"ftp\",\n  \"hostname\": \"ftp.acme.io\",\n  \"username\": \"web\",\n  \"password\": \"{a}\",\n  \"target\": \"/public_html\"\n}}\n"
        ),
        vec![("credfile.ftp_client_json", a)],
    ));
    let a = g.chars(ALNUM, 13);
    out.push(file(
        "app/.vscode/sftp.json",
        format!(
            "{{\n    \"name\": \"prod\",\n    \"host\": \"10.1.2.3\",\n    \"protocol\": \"sftp\",\n    \"username\": \"deploy\",\n    \"password\": \"{a}\",\n    \"remotePath\": \"/srv/app\"\n}}\n"
        ),
        vec![("credfile.ftp_client_json", a)],
    ));
    let a = g.chars(HEX, 24);
    out.push(file(
        "app/.idea/webServers.xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<project version=\"4\">\n  <component name=\"WebServers\">\n    <option name=\"servers\">\n      <webServer id=\"1\" name=\"prod\" url=\"https://acme.io\">\n        <fileTransfer host=\"ftp.acme.io\" port=\"21\" rootFolder=\"/www\" accessType=\"FTP\" login=\"deploy\" password=\"{a}\" />\n      </webServer>\n    </option>\n  </component>\n</project>\n"
        ),
        vec![("credfile.jetbrains_web_servers", a)],
    ));
    let a = g.chars(ALNUM, 14);
    let b64 = crate::secrets::encode_base64(a.as_bytes());
    out.push(file(
        "home/dev/.config/filezilla/sitemanager.xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<FileZilla3 version=\"3.66.4\" platform=\"windows\">\n  <Servers>\n    <Server>\n      <Host>ftp.acme.io</Host>\n      <Port>21</Port>\n      <Protocol>0</Protocol>\n      <User>deploy</User>\n      <Pass encoding=\"base64\">{b64}</Pass>\n      <Logontype>1</Logontype>\n    </Server>\n  </Servers>\n</FileZilla3>\n"
        ),
        vec![("config.filezilla", b64)],
    ));
    let a = g.chars(ALNUM, 14);
    out.push(file(
        "workspace6/General/.dbeaver/data-sources.json",
        format!(
            "{{\n\t\"folders\": {{}},\n\t\"connections\": {{\n\t\t\"postgres-jdbc-1\": {{\n\t\t\t\"provider\": \"postgresql\",\n\t\t\t\"name\": \"prod\",\n\t\t\t\"save-password\": true,\n\t\t\t\"configuration\": {{\n\t\t\t\t\"host\": \"db.acme.io\",\n\t\t\t\t\"port\": \"5432\",\n\t\t\t\t\"user\": \"admin\",\n\t\t\t\t\"password\": \"{a}\",\n\t\t\t\t\"auth-model\": \"native\"\n\t\t\t}}\n\t\t}}\n\t}}\n}}\n"
        ),
        vec![("credfile.dbeaver_data_sources", a)],
    ));
    let a = g.chars(ALNUM, 14);
    out.push(file(
        "home/dev/.3T/robo-3t/1.4.4/robo3t.json",
        format!(
            "{{\n    \"connections\": [\n        {{\n            \"connectionName\": \"prod\",\n            \"serverHost\": \"mongo.acme.io\",\n            \"serverPort\": 27017,\n            \"credentials\": [\n                {{\n                    \"databaseName\": \"admin\",\n                    \"enabled\": true,\n                    \"userName\": \"root\",\n                    \"userPassword\": \"{a}\"\n                }}\n            ]\n        }}\n    ]\n}}\n"
        ),
        vec![("credfile.robo3t", a)],
    ));

    let a = g.chars(HEX, 128);
    out.push(file(
        "config/secrets.yml",
        format!(
            "development:\n  secret_key_base: {a}\n\nproduction:\n  secret_key_base: <%= ENV[\"SECRET_KEY_BASE\"] %>\n"
        ),
        vec![("rails.secret_key_base", a)],
    ));
    let a = g.chars(HEX, 32);
    out.push(file(
        "config/master.key",
        a.clone(),
        vec![("rails.master_key", a)],
    ));
    let key = format!(
        "base64:{}",
        crate::secrets::encode_base64(g.chars(ALNUM, 32).as_bytes())
    );
    let pw = g.chars(ALNUM, 16);
    out.push(file(
        "shop/.env",
        format!(
            "APP_NAME=Laravel\nAPP_ENV=production\nAPP_KEY={key}\nAPP_DEBUG=false\nDB_CONNECTION=mysql\nDB_PASSWORD={pw}\n"
        ),
        vec![("laravel.app_key", key), ("generic.password.env", pw)],
    ));
    let a = format!("django-insecure-{}", g.chars(LOWER_ALNUM, 50));
    out.push(file(
        "mysite/mysite/settings.py",
        format!(
            "from pathlib import Path\n\nBASE_DIR = Path(__file__).resolve().parent.parent\n\n# SECURITY WARNING: keep the secret key used in production secret!\nSECRET_KEY = '{a}'\n\nDEBUG = True\n"
        ),
        vec![("django.secret_key|django.secret_key.insecure", a)],
    ));
    let db = g.chars(ALNUM, 16);
    let salt = format!("{}(v W9|{}[k<x", g.chars(ALNUM, 24), g.chars(ALNUM, 24));
    out.push(file(
        "public_html/wp-config.php",
        format!(
            "<?php\ndefine( 'DB_NAME', 'wordpress' );\ndefine( 'DB_USER', 'wp' );\ndefine( 'DB_PASSWORD', '{db}' );\ndefine( 'DB_HOST', 'localhost' );\n\ndefine( 'AUTH_KEY',         '{salt}' );\n"
        ),
        vec![("config.php_define", db), ("wordpress.auth_salt", salt)],
    ));
    let a = g.chars(ALNUM, 20);
    let b = g.chars(ALNUM, 32);
    out.push(file(
        "svc/.env",
        format!("REDIS_PASSWORD={a}\nSTRIPE_API_KEY={b}\nLOG_LEVEL=info\n"),
        vec![("generic.password.env", a), ("generic.secret.env", b)],
    ));
    let a = format!(
        "{}-{}-{}-{}-{}",
        g.chars(HEX, 8),
        g.chars(HEX, 4),
        g.chars(HEX, 4),
        g.chars(HEX, 4),
        g.chars(HEX, 12)
    );
    out.push(file(
        "home/ops/.netrc",
        format!("machine api.heroku.com\n  login ops@acme.io\n  password {a}\n"),
        vec![("config.netrc", a)],
    ));
    let a = g.chars(HEX, 64);
    let b = format!("dop_v1_{}", g.chars(HEX, 64));
    out.push(file(
        "root/.config/doctl/config.yaml",
        format!("access-token: {a}\nauth-contexts:\n  staging: {b}\ncontext: default\n"),
        vec![("digitalocean.doctl_config", a), ("digitalocean.pat", b)],
    ));
    let a = g.chars(ALNUM, 16);
    out.push(file(
        "etc/postfix/sasl_passwd",
        format!("[smtp.acme-mail.io]:587 relay@acme.io:{a}\n"),
        vec![("mail.postfix_sasl_passwd", a)],
    ));
    let a = g.chars(ALNUM, 16);
    out.push(file(
        "home/ops/.msmtprc",
        format!(
            "account default\nhost smtp.acme.io\nport 587\nauth on\nuser alerts@acme.io\npassword {a}\nfrom alerts@acme.io\n"
        ),
        vec![("mail.msmtp_password", a)],
    ));
    let a = g.chars(ALNUM, 16);
    out.push(file(
        "home/dev/.muttrc",
        format!("set smtp_url = \"smtp://me@smtp.acme.io:587/\"\nset smtp_pass = \"{a}\"\n"),
        vec![("mail.mutt_password", a)],
    ));
    let a = g.chars(ALNUM, 12);
    out.push(file(
        "etc/asterisk/sip.conf",
        format!(
            "[general]\ncontext=default\n\n[6001]\ntype=friend\nhost=dynamic\nsecret={a}\ncontext=internal\n"
        ),
        vec![("voip.asterisk_secret", a)],
    ));
    let a = g.chars(ALNUM, 12);
    out.push(file(
        "etc/asterisk/pjsip.conf",
        format!("[6001]\ntype=auth\nauth_type=userpass\npassword={a}\nusername=6001\n"),
        vec![("voip.pjsip_password", a)],
    ));
    out.extend(agent_config_files(&mut g));
    out
}

/// Monitoring and SaaS agent configuration files, whose keys carry no
/// vendor prefix, and Twilio API keys without the word twilio.
fn agent_config_files(g: &mut FakeSecrets) -> Vec<ToolFile> {
    let mut out = Vec::new();
    let a = g.chars(HEX, 32);
    let b = g.chars(HEX, 40);
    out.push(file(
        "etc/datadog-agent/datadog.yaml",
        format!(
            "#########################\n## Basic Configuration ##\n#########################\n\n## @param api_key - string - required\napi_key: {a}\n\n## @param app_key - string - optional\napp_key: \"{b}\"\nsite: datadoghq.eu\nlogs_enabled: true\n"
        ),
        vec![("datadog.agent_config", a), ("datadog.agent_config", b)],
    ));
    let a = g.chars(HEX, 32);
    out.push(file(
        "deploy/datadog-values.yaml",
        format!("datadog:\n  site: datadoghq.com\n  clusterName: prod\n  apiKey: {a}\n"),
        vec![("datadog.helm_values", a)],
    ));
    let a = g.chars(HEX, 40);
    out.push(file(
        "newrelic/newrelic.yml",
        format!(
            "common: &default_settings\n  license_key: '{a}'\n  app_name: Orders\n  log_level: info\n\nproduction:\n  <<: *default_settings\n"
        ),
        vec![("newrelic.agent_config", a)],
    ));
    let a = g.chars(HEX, 40);
    out.push(file(
        "newrelic.ini",
        format!(
            "[newrelic]\nlicense_key = {a}\napp_name = Python Application\nmonitor_mode = true\n"
        ),
        vec![("newrelic.agent_config", a)],
    ));
    let a = g.chars(HEX, 64);
    out.push(file(
        "android/sentry.properties",
        format!("defaults.url=https://sentry.io/\ndefaults.org=acme\ndefaults.project=app\nauth.token={a}\n"),
        vec![("sentry.cli_config", a)],
    ));
    let a = g.chars(ALNUM, 24);
    out.push(file(
        "elasticapm.properties",
        format!("service_name=orders\nserver_url=https://apm.acme.io:8200\nsecret_token={a}\n"),
        vec![("elastic.apm_agent_config", a)],
    ));
    let a = g.chars(LOWER_ALNUM, 12);
    out.push(file(
        "appagent/conf/controller-info.xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<controller-info>\n    <controller-host>acme.saas.appdynamics.com</controller-host>\n    <controller-port>443</controller-port>\n    <account-name>acme</account-name>\n    <account-access-key>{a}</account-access-key>\n</controller-info>\n"
        ),
        vec![("appdynamics.account_access_key", a)],
    ));
    let a = format!(
        "{}-{}-{}-{}-{}",
        g.chars(HEX, 8),
        g.chars(HEX, 4),
        g.chars(HEX, 4),
        g.chars(HEX, 4),
        g.chars(HEX, 12)
    );
    out.push(file(
        "opt/splunk/etc/apps/hec/local/inputs.conf",
        format!("[http://orders]\ndisabled = 0\nindex = orders\ntoken = {a}\n"),
        vec![("splunk.hec_token_config", a)],
    ));
    let sid = format!("SK{}", g.chars(HEX, 32));
    let secret = g.chars(ALNUM, 32);
    out.push(file(
        "notify/.env",
        format!(
            "ACCOUNT_SID=AC{}\nAPI_KEY_SID={sid}\nAPI_KEY_SECRET={secret}\n",
            g.chars(HEX, 32)
        ),
        vec![("twilio.api_key_pair", secret)],
    ));
    let sid = format!("SK{}", g.chars(HEX, 32));
    out.push(file(
        "config/sms.yml",
        format!("sms:\n  provider: sms-gateway\n  api_key: \"{sid}\"\n"),
        vec![("twilio.api_key_sid", sid)],
    ));
    out
}

/// Source files that hold the shapes of [`credential_files`] without being
/// those files: nothing here may be reported.
pub fn credential_file_negatives(seed: u64) -> Vec<ToolFile> {
    let mut g = FakeSecrets::new(seed);
    let hex32 = g.chars(HEX, 32);
    let hex64 = g.chars(HEX, 64);
    vec![
        file(
            "src/parse.rs",
            "// host:port:database:username:password, as in .pgpass\nlet fields: Vec<&str> = line.split(':').collect();\nlet password = fields[4];\n".to_string(),
            vec![],
        ),
        file(
            "src/login.json",
            "{\"user\": \"deploy\", \"password\": \"\", \"pass\": \"${PASS}\"}\n".to_string(),
            vec![],
        ),
        file("app/models/checksum.rb", format!("{hex32}\n"), vec![]),
        file("release/sha256sums.yaml", format!("app.tar.gz: {hex64}\n"), vec![]),
        file(
            "docs/asterisk.md",
            "Set `secret=` on each peer in sip.conf.\n".to_string(),
            vec![],
        ),
        file(
            "mysite/settings.py",
            "import os\nSECRET_KEY = os.environ[\"DJANGO_SECRET_KEY\"]\n".to_string(),
            vec![],
        ),
        file(
            "wp-config-sample.php",
            "<?php\ndefine( 'DB_PASSWORD', 'password_here' );\ndefine( 'AUTH_KEY',         'put your unique phrase here' );\n".to_string(),
            vec![],
        ),
        file(
            "src/digests.py",
            format!(
                "DIGESTS = {{\n    \"SK{}\": 1,\n    \"sk{}\": 2,\n}}\nchecksum = \"SK{}\"\n",
                g.chars(b"0123456789ABCDEF", 32),
                g.chars(HEX, 32),
                g.chars(HEX, 32)
            ),
            vec![],
        ),
        file(
            "app/config.yml",
            format!("api_key: {hex32}\nlicense_key: {}\n", g.chars(HEX, 40)),
            vec![],
        ),
        file(
            "config/master.key.example",
            "# put the key from 1Password here\n".to_string(),
            vec![],
        ),
    ]
}

/// Files whose secrets are base64-encoded where the format says so
/// (Kubernetes Secrets, Docker configs, Helm values, CI variables) or as
/// blobs; `secrets` holds the decoded secret each rule must report.
pub fn encoded_files(seed: u64) -> Vec<ToolFile> {
    use crate::secrets::encode_base64 as b64;
    let mut g = FakeSecrets::new(seed);
    let mut out = Vec::new();

    let pw = g.chars(ALNUM, 20);
    let url = g.postgres_url();
    let gh = g.github_classic();
    out.push(file(
        "deploy/k8s/secrets.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  LOG_LEVEL: aW5mbw==\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: app\n  namespace: prod\ntype: Opaque\ndata:\n  DB_PASSWORD: {}\n  DATABASE_URL: {}\n  username: {}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: ci\ndata:\n  token: {}\n",
            b64(pw.as_bytes()),
            b64(url.url.as_bytes()),
            b64(b"app"),
            b64(gh.as_bytes())
        ),
        vec![
            ("generic.password.yaml", pw),
            ("database.postgres", url.password),
            ("github.pat.classic", gh),
        ],
    ));

    let user = "deploy-bot";
    let token = g.chars(ALNUM, 32);
    let pair = g.aws_key_pair();
    let auth = b64(format!("{user}:{token}").as_bytes());
    let dockerconfig = format!(
        "{{\"auths\":{{\"registry.acme.io\":{{\"username\":\"{user}\",\"auth\":\"{auth}\"}}}}}}"
    );
    out.push(file(
        "deploy/k8s/list.yaml",
        format!(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: regcred\n  type: kubernetes.io/dockerconfigjson\n  data:\n    .dockerconfigjson: {}\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: aws\n  data:\n    credentials: {}\n",
            b64(dockerconfig.as_bytes()),
            b64(format!(
                "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                pair.access_key_id, pair.secret_access_key
            )
            .as_bytes())
        ),
        vec![
            ("config.docker_auth", auth),
            ("aws.access_key.pair", pair.secret_access_key),
        ],
    ));

    let pw = g.chars(ALNUM, 18);
    out.push(file(
        "secret.json",
        format!(
            "{{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Secret\",\n  \"metadata\": {{\"name\": \"smtp\"}},\n  \"data\": {{\n    \"smtp_password\": \"{}\"\n  }}\n}}\n",
            b64(pw.as_bytes())
        ),
        vec![("generic.password.yaml|generic.password.quoted", pw)],
    ));

    let slack = g.slack_bot();
    out.push(file(
        "charts/app/values.yaml",
        format!(
            "replicaCount: 2\nnotifications:\n  slackTokenBase64: {}\n",
            b64(slack.as_bytes())
        ),
        vec![("slack.token.bot", slack)],
    ));

    let key = g.pem_rsa_private_key();
    out.push(file(
        ".gitlab-ci.yml",
        format!(
            "variables:\n  DEPLOY_KEY_B64: \"{}\"\n\ndeploy:\n  script:\n    - echo \"$DEPLOY_KEY_B64\" | base64 -d > key\n",
            b64(key.as_bytes())
        ),
        vec![("private_key.rsa", key.trim_end().to_string())],
    ));

    let openai = g.openai();
    out.push(file(
        "scripts/bootstrap.sh",
        format!(
            "#!/bin/sh\necho '{}' | base64 -d > .env\n",
            b64(format!("OPENAI_API_KEY={openai}\nMODE=prod\n").as_bytes())
        ),
        vec![("openai.api_key|openai.api_key.project", openai)],
    ));
    out
}
