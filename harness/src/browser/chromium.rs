//! One headless Chromium process, driven over the DevTools protocol
//! (chromiumoxide). We start the process ourselves, so the flags are ours
//! and a crash is a real SIGKILL of a real browser.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chromiumoxide::Browser;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Set to a browser binary to use it instead of searching `PATH`.
pub(crate) const CHROMIUM_ENV: &str = "CALLPROBE_CHROMIUM";
const NAMES: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// Why a browser peer could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum BrowserError {
    #[error(
        "Chromium was not found: install it (Debian: apt-get install chromium) or set {CHROMIUM_ENV}"
    )]
    NotFound,
    #[error("cannot start {path}: {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Chromium did not open its DevTools port within {0:?}{1}")]
    NoDevTools(Duration, String),
    #[error("a browser profile directory: {0}")]
    Profile(#[source] std::io::Error),
    #[error("DevTools: {0}")]
    Cdp(#[from] chromiumoxide::error::CdpError),
    #[error("the page: {0}")]
    Page(String),
    #[error("the page did not {0} within {1:?}")]
    Timeout(&'static str, Duration),
}

/// The browser binary: `$CALLPROBE_CHROMIUM`, else the first of the usual
/// names on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CHROMIUM_ENV) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs)
        .flat_map(|dir| NAMES.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Flags for a headless, scriptable browser with a fake camera and
/// microphone (DESIGN §8), plus what keeps WebRTC on loopback: loopback
/// interfaces are allowed as ICE candidates and host candidates are not
/// hidden behind mDNS names.
fn flags(profile: &Path, fps: u32) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--use-fake-ui-for-media-stream",
        "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
        // A `--tls self-signed` server on loopback.
        "--ignore-certificate-errors",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        // The fake camera runs at 20 fps unless told otherwise.
        format!("--use-fake-device-for-media-stream=fps={fps}"),
        format!("--user-data-dir={}", profile.display()),
        "about:blank".to_owned(),
    ])
    .collect()
}

/// A running Chromium and its DevTools connection.
pub struct Chromium {
    child: Child,
    browser: Browser,
    handler: JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Chromium {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chromium")
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl Chromium {
    /// Starts `binary` with a fresh profile and a fake camera at `fps`,
    /// and connects to it.
    pub(crate) async fn launch(
        binary: &Path,
        fps: u32,
        bound: Duration,
    ) -> Result<Self, BrowserError> {
        let profile = tempfile::Builder::new()
            .prefix("callprobe-chromium-")
            .tempdir()
            .map_err(BrowserError::Profile)?;
        let mut child = Command::new(binary)
            .args(flags(profile.path(), fps))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| BrowserError::Spawn {
                path: binary.to_owned(),
                source,
            })?;
        let stderr = child.stderr.take().expect("piped");
        let (found, address) = oneshot::channel();
        // Chromium prints its DevTools address on stderr; the rest of what
        // it says there goes to the trace log.
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut found = Some(found);
            let mut said = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    if let Some(found) = found.take() {
                        let _ = found.send(Ok(url.trim().to_owned()));
                    }
                } else if found.is_some() && said.len() < 2000 {
                    said.push_str(&line);
                    said.push('\n');
                }
                tracing::trace!(target: "callprobe::chromium", "{line}");
            }
            if let Some(found) = found.take() {
                let _ = found.send(Err(said));
            }
        });
        let url = match timeout(bound, address).await {
            Ok(Ok(Ok(url))) => url,
            Ok(Ok(Err(said))) => {
                return Err(BrowserError::NoDevTools(
                    bound,
                    format!("; it exited saying:\n{said}"),
                ));
            }
            Ok(Err(_)) | Err(_) => return Err(BrowserError::NoDevTools(bound, String::new())),
        };
        let (browser, mut events) = timeout(bound, Browser::connect(url))
            .await
            .map_err(|_| BrowserError::NoDevTools(bound, " (connecting)".into()))??;
        // The handler drives the DevTools connection; it ends with it.
        let handler = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                if let Err(error) = event {
                    tracing::trace!(%error, "DevTools handler");
                }
            }
        });
        tracing::debug!(pid = child.id(), "Chromium started");
        Ok(Chromium {
            child,
            browser,
            handler,
            _profile: profile,
        })
    }

    pub fn browser(&self) -> &Browser {
        &self.browser
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The process dies at once (SIGKILL): its sockets close, nothing is
    /// said on the way out.
    pub async fn crash(mut self) {
        let _ = self.child.start_kill();
        let _ = timeout(Duration::from_secs(5), self.child.wait()).await;
        self.handler.abort();
    }

    /// Asks the browser to close, bounded; kills it if it does not.
    pub async fn close(mut self, bound: Duration) {
        let closed = timeout(bound, self.browser.close()).await;
        if !matches!(closed, Ok(Ok(_))) {
            let _ = self.child.start_kill();
        }
        if timeout(bound, self.child.wait()).await.is_err() {
            let _ = self.child.start_kill();
            let _ = timeout(bound, self.child.wait()).await;
        }
        self.handler.abort();
    }
}
