//! The deployment's own multi-tenant Microsoft app registration, from the operator's flags (or, in
//! the demo, the emulator's multi-tenant demo app).

use crate::cli::ServeArgs;
use anyhow::{Context, bail};
use std::path::Path;

/// The app registration the flags describe: none without `--microsoft-client-id` (the demo then
/// uses the emulator's demo app); with it, exactly one credential, a certificate or a secret.
pub fn from_args(args: &ServeArgs) -> anyhow::Result<Option<sync::DeploymentApp>> {
    let Some(client_id) = args.microsoft_client_id.as_deref().map(str::trim).filter(|c| !c.is_empty()) else {
        if args.microsoft_certificate_file.is_some() || args.microsoft_client_secret_file.is_some() {
            bail!("a certificate or client secret was given without --microsoft-client-id");
        }
        return demo_app_if(args.demo);
    };
    let credential = match (&args.microsoft_certificate_file, &args.microsoft_client_secret_file) {
        (Some(_), Some(_)) => bail!("give the app registration a certificate or a client secret, not both"),
        (None, None) => bail!("--microsoft-client-id needs --microsoft-certificate-file or --microsoft-client-secret-file"),
        (Some(certificate), None) => certificate_credential(certificate, args.microsoft_private_key_file.as_deref())?,
        (None, Some(path)) => {
            let secret = read_private(path)?.lines().next().unwrap_or_default().trim().to_owned();
            if secret.is_empty() {
                bail!("the client secret file {} is empty", path.display());
            }
            microsoft::ClientCredential::Secret(secret.into())
        }
    };
    // Checked here so a typo stops the server at start, not at the first sign-in.
    microsoft::AppRegistration::with_credential(sync::ANY_ORGANIZATION, client_id, credential.clone()).context("--microsoft-client-id")?;
    Ok(Some(sync::DeploymentApp { client_id: client_id.to_ascii_lowercase(), credential }))
}

/// With `--demo` and no app registration of the operator's, the emulator's (a build without the demo
/// refuses `--demo`).
fn demo_app_if(demo: bool) -> anyhow::Result<Option<sync::DeploymentApp>> {
    if !demo {
        return Ok(None);
    }
    #[cfg(feature = "demo")]
    {
        Ok(Some(demo_app()))
    }
    #[cfg(not(feature = "demo"))]
    {
        Err(crate::demo::DemoRefusal::NotBuilt.into())
    }
}

/// The emulator's deployment app (multi-tenant, registered in the operator's tenant), as `make run`
/// uses it: nothing for the admin to type.
#[cfg(feature = "demo")]
pub fn demo_app() -> sync::DeploymentApp {
    sync::DeploymentApp {
        client_id: m365_emulator::DEPLOYMENT_CLIENT_ID.into(),
        credential: microsoft::ClientCredential::Secret(m365_emulator::DEPLOYMENT_CLIENT_SECRET.into()),
    }
}

fn certificate_credential(certificate: &Path, key: Option<&Path>) -> anyhow::Result<microsoft::ClientCredential> {
    let certificate_pem = read_private(certificate)?;
    let parsed = match key {
        Some(key) => microsoft::CertificateCredential::from_pem(&certificate_pem, &read_private(key)?),
        None => microsoft::CertificateCredential::from_combined_pem(&certificate_pem),
    };
    let credential = parsed.with_context(|| format!("the certificate in {}", certificate.display()))?;
    tracing::info!(
        thumbprint = credential.thumbprint(),
        subject = credential.subject(),
        "the deployment's app signs in with its certificate"
    );
    Ok(credential.into())
}

/// Reads a file holding a secret or a private key, warning when others may read it too.
fn read_private(path: &Path) -> anyhow::Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(file = %path.display(), "this file holds a credential and is readable by other users; chmod 600 it");
        }
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> ServeArgs {
        let argv = ["server"].iter().chain(extra).copied();
        crate::cli::Cli::try_parse_from(argv).unwrap().serve
    }

    #[test]
    fn the_flags_give_one_app_with_exactly_one_credential() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret-value\n").unwrap();
        let secret = secret.to_str().unwrap();
        let id = "22222222-3333-4444-8555-666666666666";

        assert!(from_args(&args(&[])).unwrap().is_none(), "no flags, no demo: organizations bring their own");
        let demo = from_args(&args(&["--demo"])).unwrap().unwrap();
        assert_eq!(demo.client_id, m365_emulator::DEPLOYMENT_CLIENT_ID);

        let app = from_args(&args(&["--microsoft-client-id", id, "--microsoft-client-secret-file", secret])).unwrap().unwrap();
        assert!(
            matches!(&app.credential, microsoft::ClientCredential::Secret(s) if secrecy::ExposeSecret::expose_secret(s) == "s3cret-value")
        );

        let refused = |extra: &[&str]| from_args(&args(extra)).unwrap_err().to_string();
        assert!(refused(&["--microsoft-client-id", id]).contains("needs --microsoft-certificate-file"));
        assert!(refused(&["--microsoft-client-secret-file", secret]).contains("without --microsoft-client-id"));
        let both = ["--microsoft-client-id", id, "--microsoft-client-secret-file", secret, "--microsoft-certificate-file", secret];
        assert!(refused(&both).contains("not both"));
        assert!(refused(&["--microsoft-client-id", "not-a-guid", "--microsoft-client-secret-file", secret]).contains("client-id"));
        let not_a_certificate = ["--microsoft-client-id", id, "--microsoft-certificate-file", secret];
        assert!(refused(&not_a_certificate).contains("the certificate in"));
    }

    #[test]
    fn a_certificate_file_with_its_key_is_a_certificate_credential() {
        let (cert, key, fixture) = m365_emulator::testkit::generate_certificate("deployment", "2030-01-01T00:00:00Z");
        let dir = tempfile::tempdir().unwrap();
        let combined = dir.path().join("app.pem");
        std::fs::write(&combined, format!("{cert}{key}")).unwrap();
        let id = "22222222-3333-4444-8555-666666666666";
        let app =
            from_args(&args(&["--microsoft-client-id", id, "--microsoft-certificate-file", combined.to_str().unwrap()])).unwrap().unwrap();
        let microsoft::ClientCredential::Certificate(c) = app.credential else { panic!("a certificate was given") };
        assert_eq!(c.thumbprint(), fixture.thumbprint);
    }
}
