//! Carrier tables per marketplace (issue 21 item 5): a shop sees the built-in carriers of its own
//! marketplaces, every built-in is sent as Amazon lists it, and the tracking formats accept the
//! numbers the carriers print.

use crypto::Keyring;
use domain::{
    Marketplace,
    carrier::{AmazonCarrier, amazon_carrier},
};
use sqlx::PgPool;
use store::{
    carriers::{self, NewMapping},
    shops::{self, NewShop},
};
use uuid::Uuid;

async fn shop(pool: &PgPool, code: &str, marketplaces: Vec<Marketplace>) -> Uuid {
    let mut conn = pool.acquire().await.unwrap();
    let new = NewShop {
        marketplaces,
        ..NewShop::japan_at(
            code.parse().unwrap(),
            code,
            "A1SELLER",
            "http://127.0.0.1:1",
        )
    };
    shops::insert(&mut conn, &Keyring::for_testing(), &new)
        .await
        .unwrap()
        .shop
        .id
}

async fn keys(pool: &PgPool, shop: Uuid) -> Vec<String> {
    let mut conn = pool.acquire().await.unwrap();
    carriers::effective(&mut conn, shop)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.external_delivery_method)
        .collect()
}

#[sqlx::test(migrations = "../../migrations")]
async fn each_shop_sees_the_carriers_of_its_marketplaces(pool: PgPool) {
    let jp = shop(&pool, "jp", vec![Marketplace::Japan]).await;
    let au = shop(&pool, "au", vec![Marketplace::Australia]).await;
    let sg = shop(&pool, "sg", vec![Marketplace::Singapore]).await;
    let jp_au = shop(
        &pool,
        "jpau",
        vec![Marketplace::Japan, Marketplace::Australia],
    )
    .await;
    let (jp_keys, au_keys, sg_keys, both) = (
        keys(&pool, jp).await,
        keys(&pool, au).await,
        keys(&pool, sg).await,
        keys(&pool, jp_au).await,
    );
    let has = |ks: &[String], k: &str| ks.iter().any(|x| x == k);
    for k in ["yamato", "sagawa", "japan_post", "yu_packet", "dhl", "ups"] {
        assert!(has(&jp_keys, k), "JP lacks {k}: {jp_keys:?}");
    }
    for k in [
        "australia_post",
        "australia_post_consignment",
        "australia_post_article",
        "couriers_please",
        "sendle",
        "startrack",
        "fastway",
        "tnt",
        "aramex",
        "dhl",
    ] {
        assert!(has(&au_keys, k), "AU lacks {k}: {au_keys:?}");
    }
    for k in [
        "singapore_post",
        "ninja_van",
        "j_and_t",
        "qxpress",
        "ta_q_bin",
        "aramex",
        "fedex",
    ] {
        assert!(has(&sg_keys, k), "SG lacks {k}: {sg_keys:?}");
    }
    assert!(!has(&jp_keys, "sendle") && !has(&jp_keys, "ninja_van"));
    assert!(!has(&au_keys, "yamato") && !has(&au_keys, "ninja_van"));
    assert!(!has(&sg_keys, "yamato") && !has(&sg_keys, "sendle"));
    assert!(has(&both, "yamato") && has(&both, "sendle") && !has(&both, "ninja_van"));

    // resolve follows the same rule.
    let mut conn = pool.acquire().await.unwrap();
    assert!(
        carriers::resolve(&mut conn, au, "yamato")
            .await
            .unwrap()
            .is_none()
    );
    let m = carriers::resolve(&mut conn, jp, "Yamato ")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.marketplace_codes(), vec!["JP"]);
    let dhl = carriers::resolve(&mut conn, sg, "dhl")
        .await
        .unwrap()
        .unwrap();
    assert!(dhl.marketplace_codes().is_empty());
}

/// Every built-in goes to Amazon as a listed code or as Other with a name, and its tracking
/// format accepts a number the carrier prints and refuses a short one.
#[sqlx::test(migrations = "../../migrations")]
async fn built_ins_are_amazons_codes_and_their_formats_accept_real_numbers(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let built_ins = carriers::list(&mut conn, None).await.unwrap();
    assert!(built_ins.len() >= 25, "{}", built_ins.len());
    for m in &built_ins {
        match m.amazon_carrier() {
            AmazonCarrier::Listed(code) => assert_eq!(code, m.carrier_code, "{m:?}"),
            AmazonCarrier::Other(name) => {
                assert_eq!(m.carrier_code, "Other", "{m:?} is not on Amazon's list");
                assert!(!name.is_empty() && name.chars().count() <= 50, "{m:?}");
            }
        }
    }
    let examples = [
        ("yamato", "400012345678"),
        ("japan_post", "EN123456789JP"),
        ("yu_packet", "1234567890123"),
        ("australia_post_consignment", "33ABC1234567"),
        ("australia_post_article", "33ABC123456701000930900"),
        ("australia_post_article", "RR123456789AU"),
        ("couriers_please", "CPAKZ0012345678"),
        ("sendle", "SNJKT8Q"),
        ("startrack", "ABC1234567"),
        ("singapore_post", "RR123456789SG"),
        ("ninja_van", "NVSGABC123456789"),
        ("j_and_t", "JT1234567890"),
        ("ta_q_bin", "123456789012"),
    ];
    for (key, number) in examples {
        let m = built_ins
            .iter()
            .find(|m| m.external_delivery_method == key)
            .unwrap_or_else(|| panic!("no built-in {key}"));
        let p = m.tracking_pattern.as_deref().unwrap();
        let re = regex::Regex::new(p).unwrap();
        assert!(re.is_match(number), "{key}: {number} against {p}");
        assert!(!re.is_match("12"), "{key}: {p} accepts 12");
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn replacing_a_built_in_keeps_its_marketplaces_and_shop_rows_have_none(pool: PgPool) {
    let au = shop(&pool, "au", vec![Marketplace::Australia]).await;
    let jp = shop(&pool, "jp", vec![Marketplace::Japan]).await;
    let mut conn = pool.acquire().await.unwrap();
    let new = |shop_id, marketplaces| NewMapping {
        shop_id,
        external_delivery_method: "sendle",
        carrier_code: "Sendle",
        carrier_name: None,
        tracking_pattern: Some("^[A-Z0-9]{6,10}$"),
        marketplaces,
    };
    // A built-in replaced without marketplaces keeps AU only.
    let m = carriers::upsert(&mut conn, &new(None, None)).await.unwrap();
    assert_eq!(m.marketplace_codes(), vec!["AU"]);
    assert_eq!(m.tracking_pattern.as_deref(), Some("^[A-Z0-9]{6,10}$"));
    assert!(!keys(&pool, jp).await.contains(&"sendle".to_owned()));
    // Given marketplaces replace them.
    let both = vec![
        Marketplace::Australia.code().to_owned(),
        Marketplace::Japan.code().to_owned(),
    ];
    let m = carriers::upsert(&mut conn, &new(None, Some(&both)))
        .await
        .unwrap();
    assert_eq!(m.marketplace_codes(), vec!["AU", "JP"]);
    assert!(keys(&pool, jp).await.contains(&"sendle".to_owned()));
    // A shop's own row has no marketplaces and wins over the built-in.
    let own = carriers::upsert(&mut conn, &new(Some(au), Some(&both)))
        .await
        .unwrap();
    assert_eq!(own.marketplaces, None);
    let seen = carriers::resolve(&mut conn, au, "sendle")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.shop_id, Some(au));
    // A new built-in without marketplaces serves every marketplace.
    let m = carriers::upsert(
        &mut conn,
        &NewMapping {
            external_delivery_method: "pigeon_post",
            ..new(None, None)
        },
    )
    .await
    .unwrap();
    assert!(m.marketplaces.is_none());
    assert!(keys(&pool, jp).await.contains(&"pigeon_post".to_owned()));
}

#[test]
fn unlisted_codes_need_a_name_only_when_they_say_other() {
    let m = |code, name| NewMapping {
        shop_id: None,
        external_delivery_method: "x",
        carrier_code: code,
        carrier_name: name,
        tracking_pattern: None,
        marketplaces: None,
    };
    assert!(
        m("Other", None)
            .invalid()
            .unwrap()
            .contains("needs a carrier name")
    );
    assert_eq!(m("Ninja Van", None).invalid(), None);
    assert_eq!(
        amazon_carrier("Ninja Van", None),
        AmazonCarrier::Other("Ninja Van".into())
    );
    assert!(
        m("Other", Some(&"x".repeat(51)))
            .invalid()
            .unwrap()
            .contains("50")
    );
}
