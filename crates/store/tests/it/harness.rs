//! Fresh, isolated databases for each scenario.

use store::DynStore;

pub struct TestDb {
    pub store: DynStore,
    // Kept alive so the SQLite file outlives the test.
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    TestDb { store: store::open(&url).await.unwrap(), _dir: Some(dir) }
}

/// A new database on the test PostgreSQL server, or `None` when there is none to use.
pub async fn postgres() -> Option<TestDb> {
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
    let url = format!("{base}/{name}");
    Some(TestDb { store: store::open(&url).await.unwrap(), _dir: None })
}

/// Declares one `#[tokio::test]` per backend for a scenario `async fn(&dyn Store)`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let db = crate::harness::sqlite().await;
                    assert_eq!(db.store.backend(), store::Backend::Sqlite);
                    super::$scenario(db.store.as_ref()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    if let Some(db) = crate::harness::postgres().await {
                        assert_eq!(db.store.backend(), store::Backend::Postgres);
                        super::$scenario(db.store.as_ref()).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
