//! The front end's files as a browser gets them: hashed names in the page, precompressed bodies,
//! a year's caching for hashed names and revalidation for plain ones.

use crate::helpers::*;

/// A site as `make build-site` lays it out, with hashed names when `hashed`.
fn site(hashed: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let name = |ext: &str| if hashed { format!("i360.abc{ext}.{ext}") } else { format!("i360.{ext}") };
    for ext in ["js", "wasm", "css"] {
        std::fs::write(pkg.join(name(ext)), format!("plain {ext}")).unwrap();
        std::fs::write(pkg.join(format!("{}.br", name(ext))), format!("brotli {ext}")).unwrap();
        std::fs::write(pkg.join(format!("{}.gz", name(ext))), format!("gzip {ext}")).unwrap();
    }
    if hashed {
        std::fs::write(dir.path().join("hash.txt"), "js: abcjs\nwasm: abcwasm\ncss: abccss\n").unwrap();
    }
    dir
}

async fn get(app: &TestApp, path: &str, encoding: &str) -> reqwest::Response {
    let client = reqwest::Client::builder().no_brotli().no_gzip().build().unwrap();
    client.get(app.url(path)).header("accept-encoding", encoding).send().await.unwrap()
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn hashed_files_are_named_in_the_page_served_precompressed_and_cached_for_a_year() {
    let dir = site(true);
    let root = dir.path().to_path_buf();
    let app = spawn_app_configured(move |c| c.site_root = root).await;

    let page = get(&app, "/login", "br").await.text().await.unwrap();
    for href in ["/pkg/i360.abcjs.js", "/pkg/i360.abcwasm.wasm", "/pkg/i360.abccss.css"] {
        assert!(page.contains(href), "the page names {href}: {page}");
    }
    let br = get(&app, "/pkg/i360.abcwasm.wasm", "gzip, deflate, br").await;
    assert_eq!(br.status(), 200);
    assert_eq!(header(&br, "content-encoding"), "br");
    assert_eq!(header(&br, "cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(br.text().await.unwrap(), "brotli wasm");
    let gz = get(&app, "/pkg/i360.abccss.css", "gzip").await;
    assert_eq!(header(&gz, "content-encoding"), "gzip");
    assert_eq!(header(&gz, "content-type"), "text/css");
    assert_eq!(gz.text().await.unwrap(), "gzip css");
    let plain = get(&app, "/pkg/i360.abcjs.js", "identity").await;
    assert_eq!(header(&plain, "content-encoding"), "");
    assert_eq!(plain.text().await.unwrap(), "plain js");
    assert_eq!(get(&app, "/pkg/i360.missing.js", "br").await.status(), 404);
    app.emu.shutdown().await;
}

#[tokio::test]
async fn plain_names_are_revalidated() {
    let dir = site(false);
    let root = dir.path().to_path_buf();
    let app = spawn_app_configured(move |c| c.site_root = root).await;
    let page = get(&app, "/login", "br").await.text().await.unwrap();
    assert!(page.contains("/pkg/i360.css") && page.contains("/pkg/i360.wasm"), "{page}");
    let res = get(&app, "/pkg/i360.js", "br").await;
    assert_eq!(header(&res, "cache-control"), "no-cache");
    assert_eq!(header(&res, "content-encoding"), "br");
    app.emu.shutdown().await;
}
