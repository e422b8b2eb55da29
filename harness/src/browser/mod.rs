//! Browser peers (DESIGN §8): headless Chromium showing our page (the
//! server's `/`), driven over the DevTools protocol, taking the same
//! commands and giving the same events as a synthetic peer.
//!
//! | module | what |
//! |---|---|
//! | `chromium` | finding, starting, crashing and closing the browser process |
//! | `page` | the page's event log (a DevTools binding) and its `window.callprobe` API |
//! | `peer` | the browser peer task: commands in, events out |
//! | `stats`, `grab`, `report` | what the browser received: `getStats`, canvas grabs read back, the call report |

mod chromium;
mod grab;
mod page;
mod peer;
mod report;
mod stats;

pub use chromium::{BrowserError, CHROMIUM_ENV, Chromium, find_chromium};
pub use grab::{Grab, GrabError, GrabReading, read_grab};
pub use page::{PageEvent, PeerPage};
pub use peer::{BrowserPeerConfig, page_url_for, spawn_browser_peer};
pub use report::{BrowserCallStats, GrabMiss};
pub use stats::{CandidatePair, Codec, PageStats, RtpStats};
