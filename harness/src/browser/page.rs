//! Our browser peer page (server `/`), seen from the harness: its event log
//! pushed through a DevTools binding as things happen, and its
//! `window.callprobe` API called with `Runtime.evaluate`.

use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::js_protocol::runtime::{
    AddBindingParams, EvaluateParams, EventBindingCalled,
};
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::chromium::{BrowserError, Chromium};

/// The name the page calls, when it exists, with each event as JSON.
const BINDING: &str = "__callprobeEvent";
/// Bound on one call into the page.
const EVAL_TIMEOUT: Duration = Duration::from_secs(10);

/// One entry of the page's event log.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub(crate) struct PageEvent {
    pub seq: u64,
    /// Wall clock, ms since the Unix epoch (`performance.timeOrigin + now()`).
    pub at: f64,
    pub kind: String,
    pub remote: Option<String>,
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

impl PageEvent {
    /// A string field of `detail`.
    pub(crate) fn detail_str(&self, field: &str) -> Option<&str> {
        self.detail.as_ref()?.get(field)?.as_str()
    }
}

/// The page of one browser peer.
#[derive(Debug)]
pub(crate) struct PeerPage {
    page: Page,
}

impl PeerPage {
    /// Opens `url` in a new tab; its events arrive on the returned channel
    /// from the first one on.
    pub(crate) async fn open(
        chromium: &Chromium,
        url: &str,
    ) -> Result<(PeerPage, mpsc::UnboundedReceiver<PageEvent>), BrowserError> {
        let page = chromium.browser().new_page("about:blank").await?;
        page.execute(AddBindingParams::new(BINDING)).await?;
        let mut calls = page.event_listener::<EventBindingCalled>().await?;
        let (sender, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(call) = calls.next().await {
                if call.name != BINDING {
                    continue;
                }
                match serde_json::from_str::<PageEvent>(&call.payload) {
                    Ok(event) => {
                        if sender.send(event).is_err() {
                            break;
                        }
                    }
                    Err(error) => tracing::warn!(%error, "an event the page sent does not parse"),
                }
            }
        });
        page.goto(url).await?;
        Ok((PeerPage { page }, events))
    }

    /// Evaluates `expression` (awaiting a promise) and returns its value.
    pub(crate) async fn eval<T: DeserializeOwned>(
        &self,
        expression: &str,
    ) -> Result<T, BrowserError> {
        let params = EvaluateParams::builder()
            .expression(expression)
            .await_promise(true)
            .return_by_value(true)
            .build()
            .map_err(BrowserError::Page)?;
        let result = timeout(EVAL_TIMEOUT, self.page.evaluate_expression(params))
            .await
            .map_err(|_| BrowserError::Timeout("answer", EVAL_TIMEOUT))?
            .map_err(|e| BrowserError::Page(format!("{expression}: {e}")))?;
        // `undefined` comes back without a value: read it as null.
        let value = result.value().cloned().unwrap_or(serde_json::Value::Null);
        serde_json::from_value(value).map_err(|e| BrowserError::Page(format!("{expression}: {e}")))
    }

    /// Calls `callprobe.<function>(<remote id>)`.
    pub(crate) async fn call_with_id<T: DeserializeOwned>(
        &self,
        function: &str,
        remote: &str,
    ) -> Result<T, BrowserError> {
        let id = serde_json::to_string(remote).expect("a string serializes");
        self.eval(&format!("window.callprobe.{function}({id})"))
            .await
    }
}
