//! Step 4, strategy `confirm_shipment`: Orders v0 `confirmShipment` per order (package
//! reference 1, so a repeat edits the same shipment instead of adding one) — or, for a shop that
//! sends every package, one call per package not confirmed yet (reference = package number) —
//! result immediate: 出荷済み (shipped), 一部出荷済み (partially shipped: the packages confirmed
//! so far do not cover the order), or `failed` with Amazon's message.

use chrono::{DateTime, Utc};
use job_api::JobError;
use spapi::ErrorClass;
use spapi::fulfillment_feed::Carrier;
use store::api_log::{self, Entry, Level};

use crate::confirmation::{confirmation, offset_of};
use crate::job::{Feedback, Run, refuse};
use crate::validate::Parcel;
use crate::{ACTION, FailPoints, RunReport};
use store::shipments::{self as db, Target};

impl Feedback {
    /// Confirms each validated target with `confirmShipment`.
    pub(crate) async fn confirm_each(
        &self,
        run: &Run<'_>,
        api: &spapi::Shop,
        valid: Vec<(Target, Vec<Parcel>)>,
        now: DateTime<Utc>,
        report: &mut RunReport,
    ) -> Result<(), JobError> {
        use spapi::orders_v0::{ConfirmShipmentOrderItem, ConfirmShipmentRequest, PackageDetail};
        let shop = &run.shop.shop;
        let offset = offset_of(shop, now);
        let mut conn = self.deps.pool.acquire().await?;
        for (n, (t, parcels)) in valid.into_iter().enumerate() {
            if n > 0 && n % 50 == 0 && !run.keep_lease(&mut conn).await? {
                return Ok(());
            }
            let Some(order_id) = t.amazon_order_id.clone() else {
                continue;
            };
            let lines = db::lines(&mut conn, t.id).await?;
            if lines.is_empty() {
                report.refused += 1;
                refuse(&mut conn, run, &t, "no_order_items", "confirmShipment needs the order's item ids and quantities, and this instruction has no Amazon order items").await?;
                continue;
            }
            // One confirmShipment per parcel: the whole order as package 1 (the seed's rule), or
            // each package with its own number and items (a repeat edits the same package).
            let mut outcome = Ok(());
            for parcel in &parcels {
                let conf = confirmation(shop, &t, parcel, offset, now);
                let (carrier_code, carrier_name) = match &conf.carrier {
                    Carrier::Code(code) => (code.clone(), None),
                    Carrier::Other { name } => ("Other".to_owned(), Some(name.clone())),
                };
                let order_items = if parcel.items.is_empty() {
                    lines
                        .iter()
                        .map(|(item, qty)| (item.clone(), *qty as u32))
                        .collect::<Vec<_>>()
                } else {
                    parcel
                        .items
                        .iter()
                        .map(|i| (i.order_item_id.clone(), i.quantity))
                        .collect()
                };
                let request = ConfirmShipmentRequest {
                    marketplace_id: t
                        .marketplace_id
                        .clone()
                        .unwrap_or_else(|| shop.primary_marketplace().id().to_owned()),
                    package_detail: PackageDetail {
                        package_reference_id: parcel.number.unwrap_or(1).to_string(),
                        carrier_code,
                        carrier_name,
                        shipping_method: conf.shipping_method.clone(),
                        tracking_number: conf.tracking_number.clone(),
                        ship_date: conf.fulfillment_date.with_timezone(&Utc),
                        ship_from_supply_source_id: None,
                        order_items: order_items
                            .into_iter()
                            .map(|(order_item_id, quantity)| ConfirmShipmentOrderItem {
                                order_item_id,
                                quantity,
                                transparency_codes: vec![],
                            })
                            .collect(),
                    },
                    cod_collection_method: conf
                        .cod_collection_method
                        .map(|_| "DirectPayment".to_owned()),
                };
                let sent = api.confirm_shipment(&order_id, &request).await;
                if FailPoints::armed(&self.fail.crash_after_confirm) {
                    return Err(self.fail.hit("crash after confirmShipment"));
                }
                outcome = match sent {
                    Err(e)
                        if matches!(e.class(), ErrorClass::Reconcile | ErrorClass::Permanent) =>
                    {
                        // Did it land (unknown outcome), or was it already confirmed with this
                        // tracking number (e.g. "already shipped" after a crash)? The order's
                        // packages decide.
                        match api
                            .get_order(&order_id, &[spapi::orders::IncludedData::Packages])
                            .await
                        {
                            Ok(order)
                                if order.packages.iter().any(|p| {
                                    p.tracking_number.as_deref()
                                        == Some(conf.tracking_number.as_str())
                                }) =>
                            {
                                Ok(())
                            }
                            _ => Err(e),
                        }
                    }
                    other => other,
                };
                if let Some(number) = parcel.number {
                    // Each package keeps its own result: a confirmed one is never sent again.
                    match &outcome {
                        Ok(()) => {
                            store::packages::set_confirmed(&mut conn, t.id, number, Ok(())).await?
                        }
                        Err(e) if e.class() == ErrorClass::Permanent => {
                            let (_, msg) = amazon_message(e);
                            store::packages::set_confirmed(&mut conn, t.id, number, Err(&msg))
                                .await?
                        }
                        Err(_) => {}
                    }
                }
                if outcome.is_err() {
                    break;
                }
            }
            let packages = parcels.iter().any(|p| p.number.is_some());
            match outcome {
                Ok(()) if packages => {
                    // Shipped when the order left whole and every package is confirmed, else
                    // partially shipped (一部出荷済み) until the rest is confirmed.
                    db::mark_packages_confirmed(&mut conn, t.id).await?;
                    report.sent += 1;
                    let shipped =
                        db::api_status(&mut conn, t.id).await? == Some(domain::ApiStatus::Shipped);
                    let numbers: Vec<String> = parcels
                        .iter()
                        .filter_map(|p| p.number.map(|n| n.to_string()))
                        .collect();
                    let message = if shipped {
                        format!(
                            "packages {} confirmed by Amazon (confirmShipment): 出荷済み",
                            numbers.join(", ")
                        )
                    } else {
                        format!(
                            "packages {} confirmed by Amazon (confirmShipment): 一部出荷済み, the rest of the order is not confirmed yet",
                            numbers.join(", ")
                        )
                    };
                    api_log::write(
                        &mut conn,
                        &Entry {
                            run_id: Some(run.run_id),
                            amazon_order_id: Some(&order_id),
                            code: Some(if shipped {
                                "shipment_confirmed"
                            } else {
                                "shipment_partially_confirmed"
                            }),
                            ..Entry::new(Some(shop.id), ACTION, Level::Info, &message)
                        },
                    )
                    .await?;
                }
                Ok(()) => {
                    db::mark_confirmed(&mut conn, t.id).await?;
                    report.sent += 1;
                    api_log::write(
                        &mut conn,
                        &Entry {
                            run_id: Some(run.run_id),
                            amazon_order_id: Some(&order_id),
                            code: Some("shipment_confirmed"),
                            ..Entry::new(
                                Some(shop.id),
                                ACTION,
                                Level::Info,
                                "shipment confirmed by Amazon (confirmShipment): 出荷済み",
                            )
                        },
                    )
                    .await?;
                }
                Err(e) if e.class() == ErrorClass::Permanent => {
                    let (code, msg) = amazon_message(&e);
                    db::mark_failed(&mut conn, t.id, &msg).await?;
                    report.failed += 1;
                    api_log::write(
                        &mut conn,
                        &Entry {
                            run_id: Some(run.run_id),
                            amazon_order_id: Some(&order_id),
                            code: Some(&code),
                            ..Entry::new(Some(shop.id), ACTION, Level::Error, &msg)
                        },
                    )
                    .await?;
                }
                Err(e) => return Err(JobError::api("confirmShipment", e)),
            }
        }
        Ok(())
    }
}

/// Amazon's code and message of a refused call (for the operator).
fn amazon_message(e: &spapi::Error) -> (String, String) {
    match e.api_errors().first() {
        Some(a) => (
            a.code.clone(),
            match &a.details {
                Some(d) if !d.is_empty() => format!("{} ({d})", a.message),
                _ => a.message.clone(),
            },
        ),
        None => ("api_error".into(), e.to_string()),
    }
}
