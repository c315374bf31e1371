//! Fresh, isolated databases for each scenario.

use std::sync::Arc;
use store::DynStore;
use store::secrets::Keyring;

fn keyring() -> Arc<Keyring> {
    Arc::new(Keyring::ephemeral())
}

pub enum Raw {
    /// Every byte of the SQLite files (database, WAL) is searched.
    SqliteDir(std::path::PathBuf),
    /// Every row of every table, as PostgreSQL's text form of the row (bytea as hex).
    Postgres(String),
}

impl Raw {
    /// True when `needle` (or its hex form) appears anywhere in the stored data.
    pub async fn contains(&self, needle: &str) -> bool {
        let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
        match self {
            Raw::SqliteDir(dir) => std::fs::read_dir(dir).unwrap().any(|entry| {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
                bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            }),
            Raw::Postgres(url) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                let tables: Vec<String> = sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                for t in tables {
                    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT t::text FROM \"{t}\" t")))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                    if rows.iter().any(|r| r.contains(needle) || r.contains(&hex)) {
                        return true;
                    }
                }
                false
            }
        }
    }
}

pub struct TestDb {
    pub store: DynStore,
    /// What the raw database holds, for checks that no secret is stored in plain text.
    pub raw: Raw,
    // Kept alive so the SQLite file outlives the test.
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    TestDb { store: store::open(&url, keyring()).await.unwrap(), raw: Raw::SqliteDir(dir.path().to_owned()), _dir: Some(dir) }
}

/// A new database on the test PostgreSQL server, or `None` when there is none to use.
pub async fn postgres() -> Option<TestDb> {
    let url = postgres_url().await?;
    Some(TestDb { store: store::open(&url, keyring()).await.unwrap(), raw: Raw::Postgres(url.clone()), _dir: None })
}

/// The URL of a new, empty database on the test PostgreSQL server, or `None` when there is none.
pub async fn postgres_url() -> Option<String> {
    let Ok(admin_url) = std::env::var("STORE_TEST_POSTGRES_URL") else {
        if std::env::var("STORE_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!("STORE_TEST_REQUIRE_POSTGRES=1 but STORE_TEST_POSTGRES_URL is not set");
        }
        eprintln!("skipping the PostgreSQL run: STORE_TEST_POSTGRES_URL is not set");
        return None;
    };
    use sqlx::Connection;
    let name = format!("store_it_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    // The name is a UUID we made: safe to splice.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin_url);
    Some(format!("{base}/{name}"))
}

/// Declares one `#[tokio::test]` per backend for a scenario `async fn(&TestDb)`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let db = crate::harness::sqlite().await;
                    assert_eq!(db.store.backend(), store::Backend::Sqlite);
                    super::$scenario(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    if let Some(db) = crate::harness::postgres().await {
                        assert_eq!(db.store.backend(), store::Backend::Postgres);
                        super::$scenario(&db).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
