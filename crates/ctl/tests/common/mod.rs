//! The real `ctl` binary against a test's own database and a unique queue prefix: what every
//! test file of this crate shares.
#![allow(dead_code)] // each test binary uses part of it

use std::process::{Command, Output};

use sqlx::PgPool;
use uuid::Uuid;

pub const TEST_KEYS: &str = "1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

pub struct Env {
    pub database_url: String,
    pub prefix: String,
}

impl Env {
    pub async fn new(pool: &PgPool) -> Self {
        let db: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(pool)
            .await
            .unwrap();
        Self {
            database_url: format!("postgres://postgres@127.0.0.1:5432/{db}"),
            prefix: format!("test-ctl-{}-", Uuid::new_v4().simple()),
        }
    }

    pub fn command(&self, args: &[&str], extra: &[(&str, Option<&str>)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ctl"));
        c.args(args)
            .env("DATABASE_URL", &self.database_url)
            .env("BUS_PREFIX", &self.prefix)
            .env("CONNECTOR_ENCRYPTION_KEYS", TEST_KEYS)
            .env("LWA_CLIENT_ID", "amzn1.application-oa2-client.test")
            .env("LWA_CLIENT_SECRET", "secret-CANARY-1")
            .env("LWA_REFRESH_TOKEN", "Atzr|token-CANARY-2")
            .env_remove("CTL_REQUESTED_BY");
        for (k, v) in extra {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_with(args, &[])
    }

    pub fn ctl_with(&self, args: &[&str], extra: &[(&str, Option<&str>)]) -> Output {
        self.command(args, extra).output().expect("run ctl")
    }

    pub fn ok_with(&self, args: &[&str], extra: &[(&str, Option<&str>)]) -> String {
        let out = self.ctl_with(args, extra);
        let t = text(&out);
        assert!(out.status.success(), "ctl {args:?} failed: {t}");
        t
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, &[])
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ctl_with(&all, &[]);
        assert!(out.status.success(), "ctl {all:?} failed: {}", text(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("ctl {all:?}: not JSON ({e}): {}", text(&out)))
    }

    pub fn fails_with(
        &self,
        args: &[&str],
        extra: &[(&str, Option<&str>)],
        expected: &str,
    ) -> String {
        let out = self.ctl_with(args, extra);
        let t = text(&out);
        assert!(!out.status.success(), "ctl {args:?} should fail: {t}");
        assert!(
            t.contains(expected),
            "ctl {args:?}: expected {expected:?} in {t}"
        );
        t
    }

    pub fn fails(&self, args: &[&str], expected: &str) -> String {
        self.fails_with(args, &[], expected)
    }

    pub fn add_shop(&self, code: &str) {
        self.ok(&[
            "shop",
            "add",
            "--skip-credential-check",
            "--code",
            code,
            "--name",
            "Acme",
            "--seller-id",
            "A1SELLER",
            "--marketplace",
            "JP",
            "--sp-api-endpoint",
            "http://127.0.0.1:8700",
            "--lwa-endpoint",
            "http://127.0.0.1:8700/auth/o2/token",
        ]);
    }

    pub async fn cleanup(&self, services: &[&str]) {
        let conn = bus::connect(bus::DEFAULT_AMQP_URL, "ctl-test")
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let topo = bus::Topology::new(self.prefix.clone(), bus::DEFAULT_DELIVERY_LIMIT);
        for s in services {
            topo.delete_service(&ch, s).await.unwrap();
        }
        topo.delete_exchanges(&ch).await.unwrap();
        let _ = bus::close(&conn).await;
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
