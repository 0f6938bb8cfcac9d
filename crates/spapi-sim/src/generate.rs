//! Deterministic generation of realistic JP/AU/SG orders and of the default catalog.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rust_decimal::Decimal;

use crate::model::{
    Address, Buyer, FulfilledBy, MARKETPLACE_AU, MARKETPLACE_JP, MARKETPLACE_SG, MarketplaceInfo,
    Order, OrderItem, OrderSpec, OrderStatus, PaymentMethod, marketplace,
};

/// Number of SKUs in the default seller's catalog (`SKU-0001` ..).
pub const CATALOG_SIZE: usize = 40;

const PRODUCTS: [&str; 20] = [
    "ステンレス保温ボトル 500ml",
    "今治タオル フェイスタオル 3枚組",
    "緑茶ティーバッグ 100袋",
    "USB-C 充電ケーブル 2m",
    "ワイヤレスマウス 静音",
    "折りたたみ傘 軽量",
    "南部鉄器 急須 0.65L",
    "文庫本カバー 本革",
    "Bamboo Cutting Board Set",
    "Organic Coffee Beans 1kg",
    "LED Desk Lamp with USB Port",
    "Yoga Mat 6mm Non-Slip",
    "Stainless Steel Lunch Box",
    "Merino Wool Hiking Socks",
    "Portable Power Bank 10000mAh",
    "Ceramic Pour-Over Coffee Dripper",
    "Japanese Chef Knife 210mm",
    "Silicone Baking Mat 2-Pack",
    "Noise Cancelling Earbuds",
    "Reusable Shopping Bag 5-Pack",
];

/// Title, ASIN and JPY base price of catalog SKU number `n` (1-based).
pub fn catalog_entry(n: usize) -> (String, String, String, Decimal) {
    let sku = format!("SKU-{n:04}");
    let title = PRODUCTS[(n - 1) % PRODUCTS.len()].to_string();
    let asin = format!("B0SIM{n:05}");
    // 980 .. 29,980 yen, in steps of 10.
    let yen = 980 + ((n as i64 * 1370) % 29_000) / 10 * 10;
    (sku, title, asin, Decimal::from(yen))
}

/// Catalog price of `yen` converted into the marketplace's currency.
pub fn price_in(yen: Decimal, m: &MarketplaceInfo) -> Decimal {
    match m.currency {
        "JPY" => yen,
        // Roughly 1 AUD = 100 JPY, 1 SGD = 110 JPY; keep .x5/.x9 style cents.
        "AUD" => (yen / Decimal::from(100)).round_dp(0) - Decimal::new(5, 2),
        _ => (yen / Decimal::from(110)).round_dp(0) - Decimal::new(1, 2),
    }
}

const JP_FAMILY: [&str; 14] = [
    "佐藤",
    "鈴木",
    "高橋",
    "田中",
    "伊藤",
    "渡辺",
    "山本",
    "中村",
    "小林",
    "加藤",
    "吉田",
    "山田",
    "佐々木",
    "松本",
];
const JP_GIVEN: [&str; 12] = [
    "太郎",
    "花子",
    "健太",
    "美咲",
    "翔太",
    "陽菜",
    "大輔",
    "由美",
    "拓也",
    "さくら",
    "蓮",
    "結衣",
];
/// (prefecture, city, postal prefix, town, area code)
const JP_PLACES: [(&str, &str, &str, &str, &str); 10] = [
    ("東京都", "渋谷区", "150", "神宮前", "03"),
    ("大阪府", "大阪市北区", "530", "梅田", "06"),
    ("神奈川県", "横浜市西区", "220", "みなとみらい", "045"),
    ("愛知県", "名古屋市中区", "460", "栄", "052"),
    ("福岡県", "福岡市博多区", "812", "博多駅前", "092"),
    ("北海道", "札幌市中央区", "060", "北一条西", "011"),
    ("京都府", "京都市下京区", "600", "四条通", "075"),
    ("宮城県", "仙台市青葉区", "980", "一番町", "022"),
    ("広島県", "広島市中区", "730", "紙屋町", "082"),
    ("沖縄県", "那覇市", "900", "久茂地", "098"),
];
const JP_BUILDINGS: [&str; 6] = [
    "サンハイツ",
    "グランメゾン",
    "コーポ桜",
    "パークサイド",
    "リバーヒルズ",
    "メゾン青葉",
];

const AU_GIVEN: [&str; 12] = [
    "Olivia",
    "Jack",
    "Charlotte",
    "Noah",
    "Amelia",
    "William",
    "Isla",
    "Oliver",
    "Mia",
    "Lucas",
    "Grace",
    "Thomas",
];
const AU_FAMILY: [&str; 10] = [
    "Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Johnson", "Martin",
    "White",
];
/// (state, city, postcode base)
const AU_PLACES: [(&str, &str, u32); 7] = [
    ("NSW", "Sydney", 2000),
    ("VIC", "Melbourne", 3000),
    ("QLD", "Brisbane", 4000),
    ("WA", "Perth", 6000),
    ("SA", "Adelaide", 5000),
    ("TAS", "Hobart", 7000),
    ("ACT", "Canberra", 2600),
];
const AU_STREETS: [&str; 8] = [
    "George St",
    "Collins St",
    "Queen St",
    "Hay St",
    "King William St",
    "Elizabeth St",
    "Bourke St",
    "Murray St",
];

const SG_NAMES: [&str; 12] = [
    "Tan Wei Ming",
    "Lim Hui Min",
    "Nur Aisyah binte Rahman",
    "Rajesh Kumar",
    "Ng Jia Hui",
    "Lee Kok Leong",
    "Siti Nurhaliza",
    "Wong Mei Ling",
    "Muhammad Faiz",
    "Priya Nair",
    "Goh Chee Keong",
    "Chua Li Ting",
];
const SG_STREETS: [&str; 6] = [
    "Ang Mo Kio Ave 3",
    "Tampines St 81",
    "Jurong West St 52",
    "Bedok North Rd",
    "Toa Payoh Lor 1",
    "Punggol Field",
];

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn lower_alnum(rng: &mut StdRng, n: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// A new order id in Amazon's 3-7-7 format.
pub fn order_id(rng: &mut StdRng, m: &MarketplaceInfo) -> String {
    format!("{}-{}-{}", m.order_prefix, digits(rng, 7), digits(rng, 7))
}

/// A new 14-digit order item id.
pub fn order_item_id(rng: &mut StdRng) -> String {
    let first = char::from(b'1' + rng.random_range(0..9u8));
    format!("{first}{}", digits(rng, 13))
}

fn email_domain(m: &MarketplaceInfo) -> &'static str {
    match m.id {
        MARKETPLACE_JP => "marketplace.amazon.co.jp",
        MARKETPLACE_AU => "marketplace.amazon.com.au",
        _ => "marketplace.amazon.sg",
    }
}

/// A buyer and a delivery address typical for the marketplace.
pub fn buyer_and_address(rng: &mut StdRng, m: &MarketplaceInfo) -> (Buyer, Address) {
    let email = format!("{}@{}", lower_alnum(rng, 16), email_domain(m));
    match m.id {
        MARKETPLACE_JP => {
            let name = format!(
                "{} {}",
                JP_FAMILY.choose(rng).copied().unwrap_or("佐藤"),
                JP_GIVEN.choose(rng).copied().unwrap_or("太郎")
            );
            let (pref, city, postal, town, area) = *JP_PLACES.choose(rng).unwrap_or(&JP_PLACES[0]);
            let line1 = format!(
                "{town}{}-{}-{}",
                rng.random_range(1..6),
                rng.random_range(1..30),
                rng.random_range(1..20)
            );
            let line2 = if rng.random_bool(0.6) {
                Some(format!(
                    "{}{}号室",
                    JP_BUILDINGS.choose(rng).copied().unwrap_or("サンハイツ"),
                    rng.random_range(101..1210)
                ))
            } else {
                None
            };
            let phone = if rng.random_bool(0.7) {
                format!(
                    "0{}0-{}-{}",
                    [7, 8, 9][rng.random_range(0..3)],
                    digits(rng, 4),
                    digits(rng, 4)
                )
            } else {
                let rest = 10 - area.len();
                let local = digits(rng, rest);
                let split = rest - 4;
                format!("{area}-{}-{}", &local[..split], &local[split..])
            };
            (
                Buyer {
                    name: name.clone(),
                    email,
                },
                Address {
                    name,
                    address_line1: line1,
                    address_line2: line2,
                    city: city.to_string(),
                    state_or_region: pref.to_string(),
                    postal_code: format!("{postal}-{}", digits(rng, 4)),
                    country_code: "JP".into(),
                    phone: Some(phone),
                },
            )
        }
        MARKETPLACE_AU => {
            let name = format!(
                "{} {}",
                AU_GIVEN.choose(rng).copied().unwrap_or("Olivia"),
                AU_FAMILY.choose(rng).copied().unwrap_or("Smith")
            );
            let (state, city, base) = *AU_PLACES.choose(rng).unwrap_or(&AU_PLACES[0]);
            let line2 = if rng.random_bool(0.3) {
                Some(format!("Unit {}", rng.random_range(1..40)))
            } else {
                None
            };
            (
                Buyer {
                    name: name.clone(),
                    email,
                },
                Address {
                    name,
                    address_line1: format!(
                        "{} {}",
                        rng.random_range(1..400),
                        AU_STREETS.choose(rng).copied().unwrap_or("George St")
                    ),
                    address_line2: line2,
                    city: city.to_string(),
                    state_or_region: state.to_string(),
                    postal_code: format!("{}", base + rng.random_range(0..100)),
                    country_code: "AU".into(),
                    phone: Some(format!(
                        "+61 4{} {} {}",
                        digits(rng, 2),
                        digits(rng, 3),
                        digits(rng, 3)
                    )),
                },
            )
        }
        _ => {
            let name = SG_NAMES
                .choose(rng)
                .copied()
                .unwrap_or("Tan Wei Ming")
                .to_string();
            (
                Buyer {
                    name: name.clone(),
                    email,
                },
                Address {
                    name,
                    address_line1: format!(
                        "Blk {} {}",
                        rng.random_range(100..900),
                        SG_STREETS
                            .choose(rng)
                            .copied()
                            .unwrap_or("Ang Mo Kio Ave 3")
                    ),
                    address_line2: Some(format!(
                        "#{:02}-{:02}",
                        rng.random_range(1..25),
                        rng.random_range(1..120)
                    )),
                    city: "Singapore".into(),
                    state_or_region: String::new(),
                    postal_code: digits(rng, 6),
                    country_code: "SG".into(),
                    phone: Some(format!(
                        "+65 {}{} {}",
                        [8, 9][rng.random_range(0..2)],
                        digits(rng, 3),
                        digits(rng, 4)
                    )),
                },
            )
        }
    }
}

fn payment_method(rng: &mut StdRng, m: &MarketplaceInfo) -> PaymentMethod {
    let r: f64 = rng.random();
    if m.id == MARKETPLACE_JP {
        if r < 0.55 {
            PaymentMethod::CreditCard
        } else if r < 0.8 {
            PaymentMethod::CashOnDelivery
        } else {
            PaymentMethod::ConvenienceStore
        }
    } else if r < 0.95 {
        PaymentMethod::CreditCard
    } else {
        PaymentMethod::GiftCertificate
    }
}

/// Builds an order from a spec, generating everything the spec leaves out.
/// `order_id` must already be unique.
pub fn build_order(
    rng: &mut StdRng,
    spec: &OrderSpec,
    order_id: String,
    seller_id: &str,
    now: DateTime<Utc>,
) -> Result<Order, String> {
    let mid = spec.marketplace_id.as_deref().unwrap_or(MARKETPLACE_JP);
    let m = marketplace(mid).ok_or_else(|| format!("unknown marketplaceId {mid}"))?;
    let created = spec
        .created_time
        .unwrap_or_else(|| now - Duration::minutes(5));
    let created = trunc_secs(created);
    let status = spec.status.unwrap_or(OrderStatus::Pending);
    let (gen_buyer, gen_addr) = buyer_and_address(rng, m);
    let payment = spec
        .payment_method
        .unwrap_or_else(|| payment_method(rng, m));

    let mut items = Vec::new();
    if spec.items.is_empty() {
        let lines = if rng.random_bool(0.35) {
            rng.random_range(2..=3)
        } else {
            1
        };
        let mut used = Vec::new();
        for _ in 0..lines {
            let mut n = rng.random_range(1..=CATALOG_SIZE);
            while used.contains(&n) {
                n = n % CATALOG_SIZE + 1;
            }
            used.push(n);
            let (sku, title, asin, yen) = catalog_entry(n);
            items.push(OrderItem {
                order_item_id: order_item_id(rng),
                seller_sku: sku,
                asin,
                title,
                quantity_ordered: if rng.random_bool(0.8) {
                    1
                } else {
                    rng.random_range(2..=4)
                },
                quantity_shipped: 0,
                unit_price: price_in(yen, m),
                buyer_cancel_reason: None,
                buyer_requested_cancel: false,
                gift_message: None,
                gift_wrap_level: None,
            });
        }
    } else {
        for (idx, it) in spec.items.iter().enumerate() {
            let n = rng.random_range(1..=CATALOG_SIZE);
            let (csku, ctitle, casin, yen) = catalog_entry(n);
            let sku = it.seller_sku.clone().unwrap_or(csku);
            // Catalog SKUs keep their catalog title/ASIN/price.
            let (title, asin, price) = match sku
                .strip_prefix("SKU-")
                .and_then(|d| d.parse::<usize>().ok())
                .filter(|n| (1..=CATALOG_SIZE).contains(n))
            {
                Some(k) => {
                    let (_, t, a, y) = catalog_entry(k);
                    (t, a, price_in(y, m))
                }
                None => (ctitle, casin, price_in(yen, m)),
            };
            let quantity = it.quantity.unwrap_or(1);
            if quantity == 0 {
                return Err(format!("items[{idx}].quantity must be at least 1"));
            }
            items.push(OrderItem {
                order_item_id: it
                    .order_item_id
                    .clone()
                    .unwrap_or_else(|| order_item_id(rng)),
                seller_sku: sku,
                asin: it.asin.clone().unwrap_or(asin),
                title: it.title.clone().unwrap_or(title),
                quantity_ordered: quantity,
                quantity_shipped: 0,
                unit_price: it.unit_price.unwrap_or(price),
                buyer_cancel_reason: None,
                buyer_requested_cancel: false,
                gift_message: it.gift_message.clone(),
                gift_wrap_level: it.gift_wrap_level.clone(),
            });
        }
    }

    let free_shipping = rng.random_bool(0.6);
    let shipping_price = spec.shipping_price.unwrap_or(if free_shipping {
        Decimal::ZERO
    } else {
        match m.currency {
            "JPY" => Decimal::from(500),
            "AUD" => Decimal::new(995, 2),
            _ => Decimal::new(499, 2),
        }
    });
    let cod_fee = if payment == PaymentMethod::CashOnDelivery && m.currency == "JPY" {
        Decimal::from(330)
    } else {
        Decimal::ZERO
    };
    let prime = spec.prime.unwrap_or_else(|| rng.random_bool(0.3));
    if let Some(w) = &spec.scheduled_delivery
        && w.start > w.end
    {
        return Err("scheduledDelivery.start is after its end".into());
    }
    if let Some(p) = &spec.delivery_preference
        && !p.is_object()
    {
        return Err("deliveryPreference must be an object (v2026 DeliveryPreference)".into());
    }
    let service_level = spec.service_level.clone().unwrap_or_else(|| {
        if spec.scheduled_delivery.is_some() {
            "SCHEDULED".to_string()
        } else if prime || rng.random_bool(0.1) {
            "EXPEDITED".to_string()
        } else {
            "STANDARD".to_string()
        }
    });
    let ship_days = if service_level == "EXPEDITED" { 1 } else { 2 };
    let mut order = Order {
        order_id,
        seller_id: seller_id.to_string(),
        marketplace_id: m.id.to_string(),
        seller_order_id: spec.seller_order_id.clone(),
        created_time: created,
        last_updated_time: created,
        status: OrderStatus::Pending,
        fulfilled_by: spec.fulfilled_by.unwrap_or(FulfilledBy::Merchant),
        service_level,
        prime,
        buyer: spec.buyer.clone().unwrap_or(gen_buyer),
        address: spec.address.clone().unwrap_or(gen_addr),
        payment_method: payment,
        currency: m.currency.to_string(),
        shipping_price,
        cod_fee,
        items,
        packages: Vec::new(),
        cancellation: None,
        earliest_ship_date: created,
        latest_ship_date: spec
            .latest_ship_date
            .unwrap_or(created + Duration::days(ship_days)),
        earliest_delivery_date: created + Duration::days(ship_days + 1),
        latest_delivery_date: created + Duration::days(ship_days + 4),
        pii_withheld: false,
        premium: spec.premium.unwrap_or(false),
        business: spec.business.clone(),
        scheduled_delivery: spec.scheduled_delivery,
        delivery_preference: spec.delivery_preference.clone(),
    };
    match status {
        OrderStatus::Pending | OrderStatus::Unshipped => order.status = status,
        OrderStatus::Cancelled => {
            order.status = status;
            order.cancellation = Some(crate::model::Cancellation {
                cancelled_by: "BUYER".into(),
                reason: Some("Order placed by mistake".into()),
            });
        }
        OrderStatus::Shipped | OrderStatus::PartiallyShipped => {
            order.status = OrderStatus::Shipped;
            let ship_time = created + Duration::minutes(30);
            for it in &mut order.items {
                it.quantity_shipped = it.quantity_ordered;
            }
            order.packages.push(crate::model::Package {
                package_reference_id: "1".into(),
                carrier_code: if m.id == MARKETPLACE_JP {
                    "YamatoTransport".into()
                } else {
                    "Other".into()
                },
                carrier_name: if m.id == MARKETPLACE_JP {
                    None
                } else {
                    Some("Local Courier".into())
                },
                shipping_method: None,
                tracking_number: digits(rng, 12),
                ship_time,
                created_time: ship_time,
                items: order
                    .items
                    .iter()
                    .map(|i| crate::model::PackageItem {
                        order_item_id: i.order_item_id.clone(),
                        quantity: i.quantity_ordered,
                    })
                    .collect(),
                source: "generated".into(),
            });
        }
    }
    Ok(order)
}

/// Picks a marketplace according to weights (jp, au, sg).
pub fn pick_marketplace(rng: &mut StdRng, jp: u32, au: u32, sg: u32) -> &'static str {
    let total = jp + au + sg;
    if total == 0 {
        return MARKETPLACE_JP;
    }
    let r = rng.random_range(0..total);
    if r < jp {
        MARKETPLACE_JP
    } else if r < jp + au {
        MARKETPLACE_AU
    } else {
        MARKETPLACE_SG
    }
}

/// Truncates a time to whole seconds (Amazon's timestamps have second precision).
pub fn trunc_secs(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// Random opaque token (base64url-ish alphabet).
pub fn opaque_token(rng: &mut StdRng, len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ids_have_amazon_formats() {
        let mut rng = StdRng::seed_from_u64(7);
        let m = marketplace(MARKETPLACE_JP).unwrap();
        let id = order_id(&mut rng, m);
        let re = regex::Regex::new(r"^\d{3}-\d{7}-\d{7}$").unwrap();
        assert!(re.is_match(&id), "{id}");
        assert_eq!(order_item_id(&mut rng).len(), 14);
    }

    #[test]
    fn generation_is_deterministic() {
        let now = Utc::now();
        let mk = || {
            let mut rng = StdRng::seed_from_u64(42);
            let spec = OrderSpec {
                marketplace_id: Some(MARKETPLACE_AU.into()),
                ..Default::default()
            };
            build_order(&mut rng, &spec, "249-0000000-0000001".into(), "S", now).unwrap()
        };
        assert_eq!(mk(), mk());
    }

    #[test]
    fn sg_addresses_look_singaporean() {
        let mut rng = StdRng::seed_from_u64(3);
        let m = marketplace(MARKETPLACE_SG).unwrap();
        let (_, a) = buyer_and_address(&mut rng, m);
        assert_eq!(a.country_code, "SG");
        assert_eq!(a.postal_code.len(), 6);
    }
}
