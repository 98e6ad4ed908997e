//! A throwaway PostgreSQL database per test, on the server named by
//! `TICKETD_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`).

use sqlx::{Connection, Executor, PgConnection};

pub fn admin_url() -> String {
    std::env::var("TICKETD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Created on construction, dropped (with its connections) when the test ends.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub fn create() -> TestDatabase {
        let name = format!("ticketd_test_{}", uuid_like());
        let admin = admin_url();
        runtime().block_on(async {
            let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is needed for this test and is not reachable at {admin}: {e}\n\
                     (run the tests with ./scripts/test, which starts one, or set TICKETD_TEST_POSTGRES)"
                )
            });
            conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .expect("create test database");
        });
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        TestDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl TestDatabase {
    /// Runs `sql` on the server as the administrator (`{db}` is this database's name).
    pub fn administer(&self, sql: &str) {
        let sql = sql.replace("{db}", &self.name);
        runtime().block_on(async {
            let mut conn = PgConnection::connect(&admin_url()).await.expect("connect");
            conn.execute(sqlx::AssertSqlSafe(sql))
                .await
                .expect("administer");
        });
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = admin_url();
        let name = self.name.clone();
        runtime().block_on(async {
            if let Ok(mut conn) = PgConnection::connect(&admin).await {
                let _ = conn
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await;
            }
        });
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}_{:x}_{:x}",
        std::process::id(),
        nanos,
        rand::random::<u32>()
    )
}
