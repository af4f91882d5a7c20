//! The console against a real cluster (the `kdss` binary's masters and storage nodes as
//! child processes): the whole endpoint × role table over HTTP, and the pages in headless
//! Chromium through WebDriver. One cluster test runs at a time ([`one_at_a_time`]).

mod browser;
mod common;
mod rbac;
mod webdriver;

/// Cluster tests of this binary take turns (the machine has two cores).
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ONE.lock().await
}
