//! One module per page: each handler reads its page's rows from `store::read` (or the store's
//! repositories) and renders them; none of them holds SQL.

pub mod actions;
pub mod api_log;
pub mod attention;
pub mod dashboard;
pub mod dead_letters;
pub mod delivery;
pub mod external_products;
pub mod feeds;
pub mod instructions;
pub mod login;
pub mod runs;
pub mod schedules;
pub mod shops;

use domain::messages::Action;

use maud::{Markup, html};

use crate::{Ctx, html::options};

/// `<select name="action">` of the five actions (and `console` for the API log).
fn action_select(ctx: &Ctx, selected: Option<&str>, extra_console: bool) -> Markup {
    let mut items: Vec<(String, String)> = Action::ALL
        .iter()
        .map(|a| (a.as_str().to_owned(), ctx.lang.action(*a).to_owned()))
        .collect();
    if extra_console {
        items.push(("console".into(), ctx.lang.action_str("console")));
    }
    html! {
        label {
            (ctx.t("アクション", "Action"))
            select name="action" { (options(&items, selected, Some(ctx.t("すべて", "All")))) }
        }
    }
}
