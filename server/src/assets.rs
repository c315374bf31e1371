//! The front end's files. `make build-site` names the script, the wasm and the stylesheet after
//! their content (`pkg/i360.<hash>.js`, listed in the site's `hash.txt`) and puts brotli and gzip
//! copies beside every file; here they are served from `/pkg` as they are, precompressed to
//! browsers that accept it, and cached for a year, since a changed file gets a new name. A site
//! built without hashed names (a hand-made one) is served with `no-cache`, so it is revalidated.

use axum::Router;
use axum::http::{HeaderValue, header};
use leptos::config::LeptosOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// The file, in the site's root, that lists the content hashes (as cargo-leptos writes it).
pub const HASH_FILE: &str = "hash.txt";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

fn hash_file(site_root: &Path) -> Option<PathBuf> {
    Some(site_root.join(HASH_FILE)).filter(|p| p.is_file())
}

/// Tells Leptos's script tags to use the hashed names when the site has them. The hash file's
/// path is absolute, so Leptos reads it from the site and not beside the server's executable.
pub fn use_hashed_names(options: &mut LeptosOptions, site_root: &Path) {
    if let Some(path) = hash_file(site_root).and_then(|p| std::path::absolute(p).ok()) {
        options.hash_files = true;
        options.hash_file = Arc::from(path.to_string_lossy().as_ref());
    }
}

/// `/pkg/*`: precompressed, with long-lived caching for hashed names.
pub fn pkg_routes<S: Clone + Send + Sync + 'static>(site_root: &Path) -> Router<S> {
    let cache = if hash_file(site_root).is_some() { IMMUTABLE } else { REVALIDATE };
    let files = ServeDir::new(site_root.join(app::PKG_DIR)).precompressed_br().precompressed_gzip();
    Router::new()
        .nest_service(&format!("/{}", app::PKG_DIR), files)
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static(cache)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_used_only_when_the_site_lists_them() {
        let site = tempfile::tempdir().unwrap();
        let mut options = LeptosOptions::builder().output_name("i360").build();
        use_hashed_names(&mut options, site.path());
        assert!(!options.hash_files, "no hash.txt: plain names");
        std::fs::write(site.path().join(HASH_FILE), "js: 1\nwasm: 2\ncss: 3\n").unwrap();
        use_hashed_names(&mut options, site.path());
        assert!(options.hash_files);
        assert!(Path::new(options.hash_file.as_ref()).is_absolute());
        assert!(options.hash_file.ends_with(HASH_FILE));
    }
}
