//! Fresh databases for tests of every process: SQLite always, PostgreSQL when
//! `KEEL_TEST_DATABASE_URL` is set; each test gets its own database, removed afterwards.

use crate::{ConnectOptions, Db};
use std::path::PathBuf;

enum Cleanup {
    Dir(PathBuf),
    Postgres { admin_url: String, name: String },
}

pub struct TestDb {
    pub db: Db,
    pub url: String,
    pub label: &'static str,
    cleanup: Cleanup,
}

/// The PostgreSQL server for tests, if configured.
pub fn postgres_url() -> Option<String> {
    std::env::var("KEEL_TEST_DATABASE_URL").ok().filter(|u| !u.trim().is_empty())
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map(|(b, q)| (b, Some(q))).unwrap_or((url, None));
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("keel-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = crate::sqlite_url_for_dir(&dir);
        let db = Db::connect(&url, &ConnectOptions::default()).await.expect("sqlite");
        TestDb { db, url, label: "sqlite", cleanup: Cleanup::Dir(dir) }
    }

    pub async fn postgres(admin_url: &str) -> TestDb {
        sqlx::any::install_default_drivers();
        let name = format!("keel_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(admin_url).await.expect("connect to KEEL_TEST_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.expect("create test database");
        let url = with_database(admin_url, &name);
        let db = Db::connect(&url, &ConnectOptions { max_connections: 8, ..Default::default() }).await.expect("postgres");
        TestDb { db, url, label: "postgres", cleanup: Cleanup::Postgres { admin_url: admin_url.to_string(), name } }
    }

    /// One fresh database per backend under test.
    pub async fn all() -> Vec<TestDb> {
        let mut v = vec![TestDb::sqlite().await];
        if let Some(u) = postgres_url() {
            v.push(TestDb::postgres(&u).await);
        }
        v
    }

    /// A fresh database with every migration applied.
    pub async fn migrated_all() -> Vec<TestDb> {
        let v = Self::all().await;
        for t in &v {
            crate::migrate::run(&t.db).await.expect("migrations");
        }
        v
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(d) => {
                let _ = std::fs::remove_dir_all(d);
            }
            Cleanup::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop cannot await: a private runtime on its own thread drops the database
                // (FORCE ends the test's own pooled connections, whose tasks live on the
                // test's runtime and cannot be awaited from here).
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                    rt.block_on(async move {
                        if let Ok(mut admin) = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url).await {
                            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                                .execute(&mut admin)
                                .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(super::with_database("postgres://postgres@127.0.0.1:5432/test", "x"), "postgres://postgres@127.0.0.1:5432/x");
        assert_eq!(super::with_database("postgres://u@h:1/db?sslmode=disable", "x"), "postgres://u@h:1/x?sslmode=disable");
        assert_eq!(super::with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    }
}
