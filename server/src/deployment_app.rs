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
        return Ok(args.demo.then(demo_app));
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

/// The emulator's deployment app (multi-tenant, registered in the operator's tenant), as `make run`
/// uses it: nothing for the admin to type.
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
