//! Server-rendered pages (maud): a shared layout with the navigation and the session's
//! CSRF token in a `<meta>` for the page script, the login page, and the assets, which are
//! compiled into the binary (no CDN, works offline). Buttons that change something are
//! rendered only for a role the table allows; the API checks again on every call.

mod views;

use crate::session::Session;
use crate::{Shared, session_of};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");

/// The page routes and the assets.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(views::dashboard))
        .route("/nodes", get(views::nodes))
        .route("/buckets", get(views::buckets))
        .route("/users", get(views::users))
        .route("/alerts", get(views::alerts))
        .route("/config", get(views::config))
        .route("/jobs", get(views::jobs))
        .route("/login", get(login))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
}

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
}

/// The session of a page request, or the redirect to the login page.
pub(crate) fn signed_in(c: &Shared, headers: &HeaderMap) -> Result<Session, Redirect> {
    session_of(c, headers).ok_or_else(|| Redirect::to("/login"))
}

const NAV: [(&str, &str); 7] = [
    ("/", "Dashboard"),
    ("/nodes", "Nodes & Disks"),
    ("/buckets", "Buckets"),
    ("/users", "Users"),
    ("/alerts", "Alerts"),
    ("/config", "Config"),
    ("/jobs", "Jobs"),
];

fn head(title: &str, csrf: &str) -> Markup {
    html! {
        (DOCTYPE)
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="csrf-token" content=(csrf);
        title { "KDSS · " (title) }
        link rel="stylesheet" href="/assets/console.css";
    }
}

/// A page inside the layout: navigation, who is signed in, sign-out.
pub(crate) fn page(s: &Session, path: &str, title: &str, body: Markup) -> Response {
    let m = html! {
        (head(title, &s.csrf))
        body {
            header {
                span.brand { "KDSS" }
                nav {
                    @for (href, name) in NAV {
                        a href=(href) class=[(href == path).then_some("active")] { (name) }
                    }
                }
                span.who {
                    span #who { (s.access_key) } " "
                    span.role #role { (s.role.name()) }
                    button #logout type="button" { "Sign out" }
                }
            }
            main {
                h1 { (title) }
                (body)
            }
            script src="/assets/console.js" {}
        }
    };
    Html(m.into_string()).into_response()
}

/// An error box in place of a page's content.
pub(crate) fn failed(e: &crate::ConsoleError) -> Markup {
    html! { p.error { "Could not read the cluster: " (e.to_string()) } }
}

async fn login(State(c): State<Shared>, headers: HeaderMap) -> Response {
    if session_of(&c, &headers).is_some() {
        return axum::response::Redirect::to("/").into_response();
    }
    let m = html! {
        (head("Sign in", ""))
        body.login {
            main {
                h1 { "KDSS console" }
                form #login {
                    label { "Access key" input #access_key name="access_key" autocomplete="username" required; }
                    label { "Secret key" input #secret_key name="secret_key" type="password" autocomplete="current-password" required; }
                    button #login-submit type="submit" { "Sign in" }
                    p.result #login-result {}
                }
            }
            script src="/assets/console.js" {}
        }
    };
    Html(m.into_string()).into_response()
}
