//! Browser peers (DESIGN §8): headless Chromium showing our page (the
//! server's `/`), driven over the DevTools protocol, taking the same
//! commands and giving the same events as a synthetic peer.
//!
//! | module | what |
//! |---|---|
//! | `chromium` | finding, starting, crashing and closing the browser process |
//! | `page` | the page's event log (a DevTools binding) and its `window.callprobe` API |
//! | `peer` | the browser peer task: commands in, events out |
//! | `grab`, `report` | what the browser received: canvas grabs read back, the call report (its data types, `getStats` included, are the peer's: `peer::browser_stats`) |

mod chromium;
mod grab;
mod page;
mod peer;
mod report;

pub use crate::peer::browser_stats::Codec;
pub(crate) use chromium::BrowserError;
pub use chromium::{Chromium, find_chromium};
pub use peer::{BrowserPeerConfig, page_url_for, spawn_browser_peer};
