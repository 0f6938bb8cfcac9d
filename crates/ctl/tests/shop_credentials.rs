//! `ctl shop add` takes secrets from the environment only and checks them with LWA (the
//! simulator's) before saving: a refusal names the credential to fix and saves nothing.

mod common;

use std::process::Output;

use spapi_sim::SimConfig;
use sqlx::PgPool;

use common::{Env, text};

const CLIENT_ID: &str = "amzn1.application-oa2-client.check";
const SECRET: &str = "good-secret-CANARY-1";
const TOKEN: &str = "Atzr|good-token-CANARY-2";

/// Runs the real binary off the runtime's thread (the simulator answers on this runtime), with
/// exactly the LWA variables given (the others removed).
async fn ctl(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut extra: Vec<(&str, Option<&str>)> =
        ["LWA_CLIENT_ID", "LWA_CLIENT_SECRET", "LWA_REFRESH_TOKEN"]
            .into_iter()
            .map(|k| (k, None))
            .collect();
    for (k, v) in vars {
        extra.retain(|(name, _)| name != k);
        extra.push((k, Some(v)));
    }
    let mut cmd = env.command(args, &extra);
    tokio::task::spawn_blocking(move || cmd.output().expect("run ctl"))
        .await
        .unwrap()
}

async fn shops(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM shops")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn shop_add_checks_the_credentials_with_lwa_before_saving(pool: PgPool) {
    let sim = spapi_sim::spawn(SimConfig::default()).await.unwrap();
    sim.sim()
        .register_seller(CLIENT_ID, SECRET, TOKEN, "A1CHECKSELLER");
    let base = sim.base_url();
    let lwa = format!("{base}/auth/o2/token");
    let db = Env::new(&pool).await;
    let args = [
        "shop",
        "add",
        "--code",
        "checked",
        "--name",
        "Checked",
        "--seller-id",
        "A1CHECKSELLER",
        "--marketplace",
        "JP",
        "--sp-api-endpoint",
        &base,
        "--lwa-endpoint",
        &lwa,
    ];

    // A wrong client secret: LWA says invalid_client; the message names the variable.
    let out = ctl(
        &db,
        &[
            ("LWA_CLIENT_ID", CLIENT_ID),
            ("LWA_CLIENT_SECRET", "wrong-secret"),
            ("LWA_REFRESH_TOKEN", TOKEN),
        ],
        &args,
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("LWA_CLIENT_SECRET") && text(&out).contains("nothing was saved"),
        "{}",
        text(&out)
    );
    assert_eq!(shops(&pool).await, 0);

    // A wrong refresh token: invalid_grant names LWA_REFRESH_TOKEN.
    let out = ctl(
        &db,
        &[
            ("LWA_CLIENT_ID", CLIENT_ID),
            ("LWA_CLIENT_SECRET", SECRET),
            ("LWA_REFRESH_TOKEN", "Atzr|revoked"),
        ],
        &args,
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("LWA_REFRESH_TOKEN") && text(&out).contains("nothing was saved"),
        "{}",
        text(&out)
    );
    assert_eq!(shops(&pool).await, 0);

    // A secret missing from the environment is named before anything else happens.
    let out = ctl(
        &db,
        &[("LWA_CLIENT_ID", CLIENT_ID), ("LWA_REFRESH_TOKEN", TOKEN)],
        &args,
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("LWA_CLIENT_SECRET is not set"),
        "{}",
        text(&out)
    );
    assert_eq!(shops(&pool).await, 0);

    // The right ones: one LWA request, saved, never printed.
    let lwa_calls = |sim: &spapi_sim::RunningSim| {
        sim.sim()
            .call_counts()
            .get("lwaToken")
            .map_or(0, |c| c.calls)
    };
    let before = lwa_calls(&sim);
    let vars = [
        ("LWA_CLIENT_ID", CLIENT_ID),
        ("LWA_CLIENT_SECRET", SECRET),
        ("LWA_REFRESH_TOKEN", TOKEN),
    ];
    let out = ctl(&db, &vars, &args).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("CANARY"), "{}", text(&out));
    assert_eq!(lwa_calls(&sim) - before, 1, "one LWA token request");
    assert_eq!(shops(&pool).await, 1);

    // Offline registration: no LWA request at all, even with an endpoint that answers nothing.
    let mut offline = args.to_vec();
    offline[3] = "offline";
    let dead = "http://127.0.0.1:9/auth/o2/token";
    let last = offline.len() - 1;
    offline[last] = dead;
    let out = ctl(&db, &vars, &offline).await;
    assert!(!out.status.success(), "an unreachable LWA fails the check");
    assert!(
        text(&out).contains("--skip-credential-check") && text(&out).contains(dead),
        "{}",
        text(&out)
    );
    offline.push("--skip-credential-check");
    let out = ctl(&db, &vars, &offline).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(shops(&pool).await, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn no_argument_takes_a_secret_and_help_names_the_variables() {
    let unused = Env {
        database_url: "postgres://unused".into(),
        prefix: "unused".into(),
    };
    for sub in ["add", "rotate-secret", "reauthorize"] {
        let out = ctl(&unused, &[], &["shop", sub, "--help"]).await;
        assert!(out.status.success(), "{}", text(&out));
        let help = text(&out);
        assert!(!help.contains("from-env"), "shop {sub}: {help}");
        let var = if sub == "reauthorize" {
            "LWA_REFRESH_TOKEN"
        } else {
            "LWA_CLIENT_SECRET"
        };
        let usage = help
            .lines()
            .find(|l| l.starts_with("Usage:"))
            .unwrap_or_default();
        assert!(usage.contains(var), "shop {sub} usage: {usage}");
    }
    // The old flags are gone: passing a secret as an argument is an error.
    let out = ctl(
        &unused,
        &[],
        &[
            "shop",
            "add",
            "--client-secret-from-env",
            "s3cret",
            "--code",
            "x",
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(text(&out).contains("unexpected argument"), "{}", text(&out));
}
