//! Writes a small demo tree full of fake credentials for `scripts/demo.sh`:
//! the kind of files where real ones hide (`.env`, CI config, kubeconfig,
//! source code, an archive). Everything is generated now from a fixed seed;
//! nothing is a real credential.

use keytrail_testkit::secrets::FakeSecrets;
use std::io::Write;
use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "keytrail-demo".to_string()),
    );
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(dir.join("app/config"))?;
    std::fs::create_dir_all(dir.join("deploy"))?;
    let mut f = FakeSecrets::new(2024);
    let aws = f.aws_key_pair();
    let db = f.postgres_url();
    std::fs::write(
        dir.join(".env"),
        format!(
            "# local settings (git-ignored, which is where secrets hide)\n\
             AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\nDATABASE_URL={}\n\
             GITHUB_TOKEN={}\nPLACEHOLDER_TOKEN=${{GITHUB_TOKEN}}\n",
            aws.access_key_id,
            aws.secret_access_key,
            db.url,
            f.github_classic()
        ),
    )?;
    std::fs::write(dir.join(".gitignore"), ".env\n")?;
    std::fs::write(
        dir.join("app/config/settings.py"),
        format!(
            "import os\n\nSTRIPE_KEY = \"{}\"\nOPENAI_API_KEY = os.environ.get(\"OPENAI_API_KEY\")\n\
             SLACK_WEBHOOK = \"{}\"\n",
            f.stripe_live_secret(),
            f.slack_webhook()
        ),
    )?;
    std::fs::write(dir.join("deploy/id_deploy"), f.openssh_private_key())?;
    std::fs::write(
        dir.join("deploy/service-account.json"),
        f.gcp_service_account_json(),
    )?;
    // An archive: secrets in a build artefact are still secrets.
    let tar_path = dir.join("deploy/release.tar.gz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&tar_path)?,
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    let npmrc = format!("//registry.npmjs.org/:_authToken={}\n", f.npm());
    let mut header = tar::Header::new_gnu();
    header.set_size(npmrc.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "package/.npmrc", npmrc.as_bytes())?;
    tar.into_inner()?.finish()?.flush()?;
    println!("wrote demo tree with fake credentials to {}", dir.display());
    Ok(())
}
