//! Test helpers: seed rows, run the console on a free port, an HTTP client that keeps the
//! session cookie.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";

/// A shop (dummy credentials: the console never uses them).
pub async fn shop(pool: &PgPool, code: &str, marketplace: &str, tz: &str) -> Uuid {
    let mut conn = pool.acquire().await.unwrap();
    let new = store::shops::NewShop {
        code: code.parse().unwrap(),
        name: format!("Shop {code}"),
        seller_id: "A1SELLERTEST".into(),
        marketplaces: vec![marketplace.parse().unwrap()],
        time_zone: tz.parse().unwrap(),
        sp_api_endpoint: "http://127.0.0.1:9".into(),
        lwa_endpoint: "http://127.0.0.1:9/auth".into(),
        shipment_strategy: domain::shop::ShipmentStrategy::Feed,
        client_id: "amzn1.application-oa2-client.test".into(),
        client_secret: "secret".to_owned().into(),
        refresh_token: "Atzr|refresh".to_owned().into(),
    };
    store::shops::insert(&mut conn, &crypto::Keyring::for_testing(), &new)
        .await
        .unwrap()
        .shop
        .id
}

pub async fn user(pool: &PgPool, username: &str, shops: &[&str]) {
    let shops: Vec<String> = shops.iter().map(|s| s.to_string()).collect();
    console::auth::upsert_user(
        pool,
        username,
        Some(&format!("{username} (test)")),
        PASSWORD,
        &shops,
    )
    .await
    .unwrap();
}

/// A console administrator (sees the dead-letter queues) who also sees `shops`.
pub async fn admin(pool: &PgPool, username: &str, shops: &[&str]) {
    let shops: Vec<String> = shops.iter().map(|s| s.to_string()).collect();
    console::auth::upsert_operator(
        pool,
        username,
        Some(&format!("{username} (admin)")),
        PASSWORD,
        &shops,
        Some(true),
    )
    .await
    .unwrap();
}

/// A queue prefix of this test's own (`BUS_PREFIX`), so the dead-letters page declares and reads
/// queues nobody else uses; [`delete_topology`] removes them.
pub fn unique_prefix() -> String {
    format!("test-console-{}-", Uuid::new_v4().simple())
}

/// Deletes the five services' queues (work queue and DLQ) and the exchanges of `prefix`.
pub async fn delete_topology(prefix: &str) {
    assert!(!prefix.is_empty(), "never the production topology");
    let conn = bus::connect(bus::DEFAULT_AMQP_URL, "console-test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let topo = bus::Topology::new(prefix, bus::DEFAULT_DELIVERY_LIMIT);
    for service in domain::messages::Action::ALL {
        topo.delete_service(&ch, service.as_str()).await.unwrap();
    }
    topo.delete_exchanges(&ch).await.unwrap();
    let _ = bus::close(&conn).await;
}

/// An imported instruction with one line; returns its id.
pub async fn instruction(
    pool: &PgPool,
    shop_id: Uuid,
    order_id: &str,
    buyer: &str,
    ordered_at: DateTime<Utc>,
) -> Uuid {
    let id = Uuid::now_v7();
    let personal = store::pii::PersonalData {
        buyer_name: Some(buyer.to_owned()),
        buyer_email: Some("buyer-x@marketplace.amazon.co.jp".into()),
        ship_to_name: Some(buyer.to_owned()),
        ship_to_postal_code: Some("150-0001".into()),
        ship_to_state: Some("東京都".into()),
        ship_to_city: Some("渋谷区".into()),
        ship_to_address: Some("神宮前1-2-3".into()),
        ship_to_phone: Some("03-1234-5678".into()),
        ..Default::default()
    };
    sqlx::query(
        "INSERT INTO shipping_instructions (id, shop_id, amazon_order_id, marketplace_id, status, payment_status,
             amazon_status, ordered_at, pii_enc, ship_to_country, payment_method, currency, order_total,
             shipping_total, cod_fee)
         VALUES ($1, $2, $3, 'A1VC38T7YXB528', 'awaiting_shipment', 'paid', 'UNSHIPPED', $4, $5, 'JP',
                 'cod', 'JPY', 4130, 500, 330)",
    )
    .bind(id)
    .bind(shop_id)
    .bind(order_id)
    .bind(ordered_at)
    .bind(personal.seal(&crypto::Keyring::for_testing(), shop_id, id))
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO instruction_lines (id, instruction_id, shop_id, line_no, amazon_order_item_id, sku, title,
             quantity, unit_price, line_total)
         VALUES ($1, $2, $3, 1, $4, 'SKU-UNMAPPED-1', 'テスト商品 <b>太字</b>', 2, 1650, 3300)",
    )
    .bind(Uuid::now_v7())
    .bind(id)
    .bind(shop_id)
    .bind(format!("{order_id}-1"))
    .execute(pool)
    .await
    .unwrap();
    id
}

pub async fn log(
    pool: &PgPool,
    shop_id: Uuid,
    action: &str,
    level: &str,
    order: Option<&str>,
    message: &str,
) {
    let mut conn = pool.acquire().await.unwrap();
    store::api_log::write(
        &mut conn,
        &store::api_log::Entry {
            amazon_order_id: order,
            code: Some("test"),
            ..store::api_log::Entry::new(Some(shop_id), action, level.parse().unwrap(), message)
        },
    )
    .await
    .unwrap();
}

pub async fn outbox_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The console on a free port; stops when dropped.
pub struct Server {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub async fn start(pool: PgPool, bus_prefix: &str) -> Server {
    start_with(pool, bus_prefix, bus::DEFAULT_AMQP_URL).await
}

/// [`start`] with RabbitMQ at `amqp_url` (`AMQP_URL`).
pub async fn start_with(pool: PgPool, bus_prefix: &str, amqp_url: &str) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut state = console::AppState::new(pool, bus_prefix, crypto::Keyring::for_testing());
    state.amqp_url = amqp_url.to_owned();
    tokio::spawn(console::serve(listener, state, async move {
        let _ = rx.await;
    }));
    Server {
        base,
        stop: Some(tx),
    }
}

/// An HTTP client that keeps the session and language cookies and does not follow redirects.
pub struct Client {
    http: reqwest::Client,
    pub base: String,
    cookies: Vec<(String, String)>,
}

pub struct Resp {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, r: reqwest::Response) -> Resp {
        for v in r.headers().get_all(reqwest::header::SET_COOKIE) {
            let s = v.to_str().unwrap();
            let kv = s.split(';').next().unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !v.is_empty() {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        Resp {
            status,
            body: r.text().await.unwrap(),
            location,
        }
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    /// A `multipart/form-data` POST: text fields, then one file field `file`.
    pub async fn post_file(&mut self, path: &str, fields: &[(&str, &str)], file: &[u8]) -> Resp {
        let boundary = "----console-test-boundary-7c1f";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"map.csv\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    pub async fn sign_in(&mut self, username: &str) {
        let r = self
            .post(
                "/login",
                &[
                    ("username", username),
                    ("password", PASSWORD),
                    ("next", "/"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "sign-in failed: {}", r.body);
    }

    /// The session's CSRF token, read from a page's forms.
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/actions").await.body;
        let i = page
            .find(r#"name="csrf" value=""#)
            .expect("a form with a csrf token");
        let rest = &page[i + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}
