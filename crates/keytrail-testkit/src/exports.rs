//! Structured exports with fake secrets planted in them, shaped like the
//! files the tools write: a Slack workspace export (`users.json`,
//! `channels.json`, `<channel>/<YYYY-MM-DD>.json`), a Postman collection
//! (v2.1) and environment, Jira issues from the REST API and a Confluence
//! HTML page. Every secret is generated from the caller's [`FakeSecrets`].

use serde_json::json;

use crate::secrets::FakeSecrets;

/// A Slack workspace export: its files (path, bytes) and what is planted.
pub struct SlackExport {
    /// `users.json`, `channels.json`, `general/2024-03-04.json`,
    /// `deploys/2024-03-05.json`.
    pub files: Vec<(String, Vec<u8>)>,
    /// A Slack bot token in the text of message 1 of `general/2024-03-04.json`
    /// (posted by U02BOB at 2024-03-04T09:30:00.000200Z).
    pub bot_token: String,
    /// A GitHub token in a file preview of message 0 of
    /// `deploys/2024-03-05.json` (posted by U01ADA, a thread reply, edited).
    pub github_token: String,
    /// A Slack webhook URL, written with Slack's `\/` escapes, in an
    /// attachment of the same message.
    pub webhook: String,
}

/// A Slack export with two channels, three users and a few messages.
pub fn slack_export(fs: &mut FakeSecrets) -> SlackExport {
    let bot_token = fs.slack_bot();
    let github_token = fs.github_classic();
    let webhook = fs.slack_webhook();
    let users = json!([
        {"id": "U01ADA", "name": "ada", "real_name": "Ada Lovelace",
         "profile": {"real_name": "Ada Lovelace", "display_name": "ada"}},
        {"id": "U02BOB", "name": "bob", "profile": {"real_name": "Bob Builder", "display_name": ""}},
        {"id": "U03CAROL", "name": "carol", "deleted": true, "profile": {}}
    ]);
    let channels = json!([
        {"id": "C01GEN", "name": "general", "created": 1709500000, "members": ["U01ADA", "U02BOB"]},
        {"id": "C02DEP", "name": "deploys", "created": 1709500000, "members": ["U01ADA"]}
    ]);
    let general = json!([
        {"type": "message", "user": "U01ADA", "text": "morning! who has the CI credentials?",
         "ts": "1709544000.000100", "client_msg_id": "9a1c5d0e-1111-4a4a-9b9b-2c2c2c2c2c2c",
         "team": "T0TEAM", "blocks": [{"type": "rich_text", "elements": []}]},
        {"type": "message", "user": "U02BOB",
         "text": format!("use the bot for now: {bot_token} (rotate later)"),
         "ts": "1709544600.000200", "thread_ts": "1709544000.000100", "parent_user_id": "U01ADA",
         "blocks": [{"type": "rich_text", "elements": [{"type": "rich_text_section",
            "elements": [{"type": "text", "text": format!("use the bot for now: {bot_token}")}]}]}]},
        {"type": "message", "subtype": "channel_join", "user": "U03CAROL",
         "text": "<@U03CAROL> has joined the channel", "ts": "1709545000.000300"}
    ]);
    let deploys = json!([
        {"type": "message", "user": "U01ADA", "text": "deploy script attached",
         "ts": "1709631000.000400", "thread_ts": "1709630000.000100",
         "edited": {"user": "U01ADA", "ts": "1709631100.000000"},
         "files": [{"id": "F01", "name": "deploy.sh", "title": "deploy.sh", "mimetype": "text/plain",
                    "url_private": "https://files.slack.com/files-pri/T0TEAM-F01/deploy.sh",
                    "preview": format!("#!/bin/sh\nexport GITHUB_TOKEN={github_token}\n./deploy")}],
         "attachments": [{"fallback": "webhook", "text": format!("notify via {webhook}")}],
         "user_profile": {"real_name": "Ada Lovelace", "display_name": "ada"}}
    ]);
    // Slack escapes `/` in its export files.
    let slashed = |v: &serde_json::Value| {
        serde_json::to_string_pretty(v)
            .expect("json")
            .replace('/', "\\/")
            .into_bytes()
    };
    SlackExport {
        files: vec![
            ("users.json".into(), slashed(&users)),
            ("channels.json".into(), slashed(&channels)),
            ("general/2024-03-04.json".into(), slashed(&general)),
            ("deploys/2024-03-05.json".into(), slashed(&deploys)),
        ],
        bot_token,
        github_token,
        webhook,
    }
}

/// A Postman collection and environment and what is planted in them.
pub struct Postman {
    /// `Shop API.postman_collection.json` (v2.1).
    pub collection: String,
    /// `Prod.postman_environment.json`.
    pub environment: String,
    /// Bearer token of request `Admin/Users/Create user` (`/item/0/item/0/item/0`).
    pub bearer: String,
    /// `X-Api-Key` header of request `Orders/List orders` (`/item/1/item/0`).
    pub header_key: String,
    /// Collection variable `adminPassword`.
    pub variable_password: String,
    /// Environment value `api_token`.
    pub env_token: String,
    /// A Stripe key in the raw body of `Orders/List orders`.
    pub stripe: String,
}

/// A Postman collection with folders, auth, headers, variables and
/// placeholders (`{{token}}`) next to real-looking values.
pub fn postman(fs: &mut FakeSecrets) -> Postman {
    let bearer = fs.chars(crate::secrets::ALNUM, 40);
    let header_key = fs.chars(crate::secrets::HEX, 32);
    let variable_password = format!("Pw{}9#", fs.chars(crate::secrets::ALNUM, 16));
    let env_token = fs.chars(crate::secrets::ALNUM, 32);
    let stripe = fs.stripe_live_secret();
    let collection = json!({
        "info": {
            "_postman_id": "5a2f0f0e-0d5b-4b55-8d38-0c7c5e0b2a11",
            "name": "Shop API",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
            "_exporter_id": "123456"
        },
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{token}}", "type": "string"}]},
        "item": [
            {"name": "Admin", "item": [
                {"name": "Users", "item": [
                    {"name": "Create user", "request": {
                        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": bearer, "type": "string"}]},
                        "method": "POST",
                        "header": [{"key": "Content-Type", "value": "application/json"}],
                        "body": {"mode": "raw", "raw": "{\"name\": \"ada\"}"},
                        "url": {"raw": "{{base_url}}/admin/users", "host": ["{{base_url}}"], "path": ["admin", "users"]}
                    }, "response": []}
                ]}
            ]},
            {"name": "Orders", "item": [
                {"name": "List orders", "request": {
                    "method": "GET",
                    "header": [
                        {"key": "X-Api-Key", "value": header_key, "type": "text"},
                        {"key": "Authorization", "value": "Bearer {{token}}", "type": "text"}
                    ],
                    "body": {"mode": "raw", "raw": format!("{{\"stripe_key\": \"{stripe}\"}}")},
                    "url": {"raw": "{{base_url}}/orders?limit=10", "host": ["{{base_url}}"], "path": ["orders"],
                            "query": [{"key": "limit", "value": "10"}]}
                }, "response": []}
            ]}
        ],
        "variable": [
            {"key": "base_url", "value": "https://api.shop.example"},
            {"key": "adminPassword", "value": variable_password, "type": "string"},
            {"key": "token", "value": "{{vault:shop-token}}"}
        ]
    });
    let environment = json!({
        "id": "0c3b7c1a-3f3e-4b7a-9a55-1d2e3f4a5b6c",
        "name": "Prod",
        "values": [
            {"key": "base_url", "value": "https://api.shop.example", "type": "default", "enabled": true},
            {"key": "api_token", "value": env_token, "type": "secret", "enabled": true},
            {"key": "token_url", "value": "https://auth.shop.example/oauth/token", "type": "default", "enabled": true},
            {"key": "password", "value": "{{vault:prod-password}}", "type": "secret", "enabled": false}
        ],
        "_postman_variable_scope": "environment",
        "_postman_exported_at": "2024-03-04T09:00:00.000Z",
        "_postman_exported_using": "Postman/10.24.0"
    });
    Postman {
        collection: serde_json::to_string_pretty(&collection).expect("json"),
        environment: serde_json::to_string_pretty(&environment).expect("json"),
        bearer,
        header_key,
        variable_password,
        env_token,
        stripe,
    }
}

/// Jira issues as `/rest/api/2/search` returns them, and what is planted.
pub struct Jira {
    /// The search result document.
    pub json: String,
    /// A GitHub token in the description of OPS-7 (reporter Ada, created
    /// 2024-03-04T10:00:00.000+01:00).
    pub description_token: String,
    /// An AWS key id and secret in the second comment of OPS-8 (by Bob).
    pub comment_key: crate::secrets::AwsKeyPair,
}

/// Two issues, one with comments.
pub fn jira(fs: &mut FakeSecrets) -> Jira {
    let description_token = fs.github_classic();
    let comment_key = fs.aws_key_pair();
    let doc = json!({
        "expand": "names,schema", "startAt": 0, "maxResults": 50, "total": 2,
        "issues": [
            {"id": "10007", "key": "OPS-7", "self": "https://jira.example/rest/api/2/issue/10007",
             "fields": {
                "summary": "CI cannot push images",
                "description": format!("The pipeline uses my token {description_token} until the bot is set up."),
                "project": {"key": "OPS", "name": "Operations"},
                "reporter": {"displayName": "Ada Lovelace", "emailAddress": "ada@example.com"},
                "created": "2024-03-04T10:00:00.000+0100",
                "comment": {"comments": [], "total": 0}
             }},
            {"id": "10008", "key": "OPS-8", "self": "https://jira.example/rest/api/2/issue/10008",
             "fields": {
                "summary": "S3 sync fails",
                "description": null,
                "project": {"key": "OPS", "name": "Operations"},
                "reporter": {"displayName": "Bob Builder"},
                "created": "2024-03-05T08:00:00.000+0000",
                "comment": {"total": 2, "comments": [
                    {"id": "2001", "author": {"displayName": "Ada Lovelace"}, "created": "2024-03-05T09:00:00.000+0000",
                     "body": "Which credentials does the job use?"},
                    {"id": "2002", "author": {"displayName": "Bob Builder", "emailAddress": "bob@example.com"},
                     "created": "2024-03-05T09:30:00.000+0000",
                     "body": format!("These:\naws_access_key_id = {}\naws_secret_access_key = {}",
                        comment_key.access_key_id, comment_key.secret_access_key)}
                ]}
             }}
        ]
    });
    Jira {
        json: serde_json::to_string_pretty(&doc).expect("json"),
        description_token,
        comment_key,
    }
}

/// A page of a Confluence HTML space export (`Deploy-runbook_98765.html` in
/// space `Ops`, created by Ada Lovelace) with a GitHub token in its body;
/// the page and the token.
pub fn confluence_page(fs: &mut FakeSecrets) -> (String, String) {
    let token = fs.github_classic();
    let html = format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<title>Ops : Deploy runbook</title>\n\
         <link rel=\"stylesheet\" href=\"styles/site.css\" type=\"text/css\" />\n</head>\n\
         <body class=\"theme-default aui-theme-default\">\n<div id=\"page\">\n<div id=\"main\" class=\"aui-page-panel\">\n\
         <div id=\"main-header\">\n<h1 id=\"title-heading\" class=\"pagetitle\">\n\
         <span id=\"title-text\"> Ops : Deploy runbook </span>\n</h1>\n</div>\n\
         <div id=\"content\" class=\"view\">\n<div class=\"page-metadata\">\n\
         Created by <span class='author'> Ada Lovelace</span>, last modified on Mar 04, 2024\n</div>\n\
         <div id=\"main-content\" class=\"wiki-content group\">\n<p>Push with:</p>\n\
         <pre>git push https://x-access-token:{token}@github.com/acme/app.git</pre>\n</div>\n</div>\n</div>\n</div>\n</body>\n</html>\n"
    );
    (html, token)
}

/// The `entities.xml` of a Jira backup (a project, an issue with its
/// description as a child element, a comment with its body as an
/// attribute) and what is planted: a GitHub token in OPS-7's description,
/// a Slack bot token in the comment by bob on it (issue id 10007).
pub fn jira_backup(fs: &mut FakeSecrets) -> (String, String, String) {
    let in_description = fs.github_classic();
    let in_comment = fs.slack_bot();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <entity-engine-xml date=\"1709544000000\">\n\
         \x20   <Project id=\"10000\" name=\"Operations\" key=\"OPS\" lead=\"ada\" assigneetype=\"2\"/>\n\
         \x20   <Issue id=\"10007\" key=\"OPS-7\" number=\"7\" project=\"10000\" reporter=\"ada\" creator=\"ada\" \
         type=\"10001\" summary=\"CI cannot push &amp; deploy\" priority=\"3\" status=\"1\" \
         created=\"2024-03-04 10:00:00.0\" updated=\"2024-03-05 09:30:00.0\">\n\
         \x20       <description><![CDATA[The pipeline uses my token {in_description} until the bot is set up.]]></description>\n\
         \x20   </Issue>\n\
         \x20   <Action id=\"20002\" issue=\"10007\" author=\"bob\" type=\"comment\" \
         body=\"use the bot instead:&#10;{in_comment}\" created=\"2024-03-05 09:30:00.0\"/>\n\
         </entity-engine-xml>\n"
    );
    (xml, in_description, in_comment)
}

/// The `entities.xml` of a Confluence space backup (a page and its body)
/// and the GitHub token planted in the body of page 98765 "Deploy runbook".
pub fn confluence_backup(fs: &mut FakeSecrets) -> (String, String) {
    let token = fs.github_classic();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <hibernate-generic datetime=\"2024-03-04 10:00:00\">\n\
         <object class=\"Page\" package=\"com.atlassian.confluence.pages\">\n\
         <id name=\"id\">98765</id>\n\
         <property name=\"title\"><![CDATA[Deploy runbook]]></property>\n\
         <property name=\"space\" class=\"Space\" package=\"com.atlassian.confluence.spaces\"><id name=\"id\">4242</id></property>\n\
         <property name=\"creationDate\">2024-03-04 10:00:00.000</property>\n\
         <collection name=\"bodyContents\" class=\"java.util.Collection\"><element class=\"BodyContent\" package=\"com.atlassian.confluence.core\"><id name=\"id\">555</id></element></collection>\n\
         </object>\n\
         <object class=\"BodyContent\" package=\"com.atlassian.confluence.core\">\n\
         <id name=\"id\">555</id>\n\
         <property name=\"body\"><![CDATA[<p>Push with <code>git push https://x-access-token:{token}@github.com/acme/app.git</code></p>]]></property>\n\
         <property name=\"content\" class=\"Page\" package=\"com.atlassian.confluence.pages\"><id name=\"id\">98765</id></property>\n\
         <property name=\"bodyType\">2</property>\n\
         </object>\n\
         </hibernate-generic>\n"
    );
    (xml, token)
}
