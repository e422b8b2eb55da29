//! A peer's signaling over WHIP (RFC 9725) and WHEP, in the tutorial's
//! terms, so the peer task publishes and views exactly as it calls:
//!
//! - publishing is a call with the server ([`room_remote`]): our offer is
//!   POSTed as `application/sdp` to our WHIP endpoint, the `201`'s body
//!   comes back as the server's `Answer`;
//! - viewing a publisher is a call with that publisher: our (receive-only)
//!   offer is POSTed to the publisher's WHEP endpoint; a `201` brings the
//!   answer, a `406` with an offer of the server's (the WHEP draft's older
//!   server-offer mode, which Janus's VideoRoom needs) comes back as the
//!   publisher's `Offer`, and our answer goes back by PATCH;
//! - our candidates are trickled by PATCH (`application/trickle-ice-sdpfrag`)
//!   to the resource `Location` named; hanging up DELETEs it;
//! - a status other than those is the call's `Refused`, with the status
//!   and the server's words.
//!
//! One task per resource sends its requests in order (the POST before any
//! PATCH, the DELETE last), so `send` never waits on HTTP and `next` is a
//! channel read (cancel-safe, as the peer's `select!` needs).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use callprobe_server::protocol::PeerId;
use reqwest::{StatusCode, Url, header};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::client::{ClientConfig, Received, SignalingError};
use super::janus::api::room_remote;
use super::message::{CandidateInit, Incoming, Outgoing};

/// Where a peer publishes and views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhipEndpoints {
    /// A publisher's WHIP endpoint is this followed by its peer id.
    pub whip: String,
    /// A publisher's stream, over WHEP, is this followed by its peer id.
    pub whep: String,
    /// Sent as `Authorization: Bearer …` on every request.
    pub token: Option<String>,
}

const SDP: &str = "application/sdp";
const SDP_FRAGMENT: &str = "application/trickle-ice-sdpfrag";

/// A peer's WHIP and WHEP sessions.
#[derive(Debug)]
pub(crate) struct WhipClient {
    id: PeerId,
    endpoints: WhipEndpoints,
    http: reqwest::Client,
    /// Each resource's task, by the call's remote.
    sessions: HashMap<PeerId, (mpsc::UnboundedSender<Outgoing>, JoinHandle<()>)>,
    /// Resources hung up, their DELETE maybe still under way.
    ending: Vec<JoinHandle<()>>,
    /// Bounds a close's DELETEs together.
    reply_timeout: Duration,
    deliver: mpsc::UnboundedSender<Received>,
    incoming: mpsc::UnboundedReceiver<Received>,
}

impl WhipClient {
    /// Nothing to connect to before the first offer: WHIP has no session
    /// beyond its resources. Our id names our WHIP endpoint.
    pub(crate) fn connect(
        config: &ClientConfig,
        endpoints: WhipEndpoints,
    ) -> Result<Self, SignalingError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.reply_timeout)
            .build()
            .map_err(|e| SignalingError::Server(format!("the HTTP client: {e}")))?;
        let (deliver, incoming) = mpsc::unbounded_channel();
        Ok(WhipClient {
            id: PeerId::random(),
            endpoints,
            http,
            sessions: HashMap::new(),
            ending: Vec::new(),
            reply_timeout: config.reply_timeout,
            deliver,
            incoming,
        })
    }

    pub(crate) fn start(&mut self) -> PeerId {
        self.id
    }

    /// Hands a frame to its resource's task.
    pub(crate) fn send(&mut self, message: &Outgoing) -> Result<(), SignalingError> {
        let remote = match message {
            Outgoing::Start => return Ok(()),
            Outgoing::Subscribe { .. } => {
                return Err(SignalingError::Unsupported(
                    "a WHEP viewer makes the offer: subscribing without one",
                ));
            }
            Outgoing::Offer { to, .. }
            | Outgoing::Answer { to, .. }
            | Outgoing::Candidate { to, .. }
            | Outgoing::Hangup { to } => *to,
        };
        if let Outgoing::Offer { to, sdp } = message {
            if self.sessions.contains_key(to) {
                // An ICE restart would go as a PATCH with new credentials;
                // our peers restart only on moves, which WHIP runs refuse.
                self.refuse(*to, "renegotiating a WHIP or WHEP session".into());
                return Ok(());
            }
            let endpoint = if *to == room_remote() {
                format!("{}{}", self.endpoints.whip, self.id)
            } else {
                format!("{}{}", self.endpoints.whep, to)
            };
            let (commands, queue) = mpsc::unbounded_channel();
            let session = Session {
                remote: *to,
                http: self.http.clone(),
                token: self.endpoints.token.clone(),
                deliver: self.deliver.clone(),
                resource: None,
                credentials: ice_credentials(sdp),
                awaiting_answer: false,
                held: Vec::new(),
            };
            let task = tokio::spawn(session.run(endpoint, sdp.clone(), queue));
            self.sessions.insert(*to, (commands, task));
            return Ok(());
        }
        match self.sessions.get(&remote) {
            Some((session, _)) => {
                let _ = session.send(message.clone());
            }
            None => tracing::debug!(%remote, "a frame for no WHIP resource"),
        }
        if matches!(message, Outgoing::Hangup { .. })
            && let Some((_, task)) = self.sessions.remove(&remote)
        {
            self.ending.retain(|task| !task.is_finished());
            self.ending.push(task);
        }
        Ok(())
    }

    fn refuse(&self, remote: PeerId, reason: String) {
        let _ = self.deliver.send(Received {
            at: Instant::now(),
            message: Incoming::Refused { remote, reason },
        });
    }

    /// The next frame. Never `None`: we hold a sender ourselves, and WHIP
    /// has no connection to close.
    pub(crate) async fn next(&mut self) -> Result<Option<Received>, SignalingError> {
        Ok(self.incoming.recv().await)
    }

    /// Lets go without a DELETE: the resources stay until the server sees
    /// the media stop, as with a crashed client.
    pub(crate) fn abandon(self) {
        for (_, task) in self.sessions.into_values() {
            task.abort();
        }
    }

    /// DELETEs every resource, all within one reply timeout.
    pub(crate) async fn close(mut self) {
        let mut tasks = std::mem::take(&mut self.ending);
        for (remote, (session, task)) in self.sessions.drain() {
            let _ = session.send(Outgoing::Hangup { to: remote });
            tasks.push(task);
        }
        let all = futures_util::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(self.reply_timeout, all).await.is_err() {
            tracing::debug!("WHIP DELETEs still under way at close: abandoned");
            for task in tasks {
                task.abort();
            }
        }
    }
}

/// One resource: its requests, in order.
struct Session {
    remote: PeerId,
    http: reqwest::Client,
    token: Option<String>,
    deliver: mpsc::UnboundedSender<Received>,
    /// The resource's URL, once the POST has said it.
    resource: Option<Url>,
    /// `ice-ufrag` and `ice-pwd` of our description: every trickle says
    /// them, and a changed pair would be an ICE restart.
    credentials: Option<(String, String)>,
    /// The server offered (406): candidates wait for our answer.
    awaiting_answer: bool,
    held: Vec<CandidateInit>,
}

impl Session {
    async fn run(
        mut self,
        endpoint: String,
        offer: String,
        mut queue: mpsc::UnboundedReceiver<Outgoing>,
    ) {
        if !self.post(&endpoint, offer).await {
            return;
        }
        while let Some(message) = queue.recv().await {
            match message {
                Outgoing::Candidate { candidate, .. } => {
                    self.held.push(candidate);
                    // Whatever else has queued goes in the same PATCH.
                    while let Ok(Outgoing::Candidate { candidate, .. }) = queue.try_recv() {
                        self.held.push(candidate);
                    }
                    if !self.awaiting_answer {
                        self.trickle().await;
                    }
                }
                Outgoing::Answer { sdp, .. } if self.awaiting_answer => {
                    self.credentials = ice_credentials(&sdp);
                    let sent = self
                        .request(reqwest::Method::PATCH, SDP, sdp)
                        .await
                        .map(|_| ());
                    if let Err(reason) = sent {
                        return self.refuse(format!("sending the answer: {reason}"));
                    }
                    self.awaiting_answer = false;
                    self.trickle().await;
                }
                Outgoing::Hangup { .. } => {
                    if let Err(reason) = self
                        .request(reqwest::Method::DELETE, "", String::new())
                        .await
                    {
                        tracing::debug!(remote = %self.remote, %reason, "the DELETE failed");
                    }
                    return;
                }
                other => tracing::debug!(?other, "not part of a WHIP session"),
            }
        }
    }

    /// POSTs our offer; true once the resource exists.
    async fn post(&mut self, endpoint: &str, offer: String) -> bool {
        let url = match Url::parse(endpoint) {
            Ok(url) => url,
            Err(error) => {
                self.refuse(format!("the endpoint `{endpoint}`: {error}"));
                return false;
            }
        };
        let response = self
            .authorized(self.http.post(url.clone()))
            .header(header::CONTENT_TYPE, SDP)
            .body(offer)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                self.refuse(format!("POST {url}: {error}"));
                return false;
            }
        };
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| url.join(value).ok());
        let at = Instant::now();
        let body = response.text().await.unwrap_or_default();
        let message = match (status, &location) {
            (StatusCode::CREATED, Some(_)) => Incoming::Answer {
                from: Some(self.remote),
                sdp: body,
            },
            // The server offers instead (the WHEP draft's server-offer
            // mode): we answer by PATCH.
            (StatusCode::NOT_ACCEPTABLE, Some(_)) if body.starts_with("v=0") => {
                self.awaiting_answer = true;
                Incoming::Offer {
                    from: Some(self.remote),
                    sdp: body,
                }
            }
            (StatusCode::CREATED | StatusCode::NOT_ACCEPTABLE, None) => {
                self.refuse(format!("POST {url}: {status} without a Location"));
                return false;
            }
            _ => {
                self.refuse(format!("POST {url}: {status}: {}", body.trim()));
                return false;
            }
        };
        self.resource = location;
        let _ = self.deliver.send(Received { at, message });
        true
    }

    /// PATCHes the held candidates, as an SDP fragment (RFC 8840).
    async fn trickle(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let candidates = std::mem::take(&mut self.held);
        let fragment = sdp_fragment(self.credentials.as_ref(), &candidates);
        if let Err(reason) = self
            .request(reqwest::Method::PATCH, SDP_FRAGMENT, fragment)
            .await
        {
            // A trickle the server refused loses candidates, not the call:
            // the others (and the server's) may still connect it.
            tracing::warn!(remote = %self.remote, %reason, "a trickle PATCH failed");
        }
    }

    /// A request to the resource; its status and words when not 2xx.
    async fn request(
        &self,
        method: reqwest::Method,
        content_type: &str,
        body: String,
    ) -> Result<StatusCode, String> {
        let Some(resource) = &self.resource else {
            return Err("no resource".into());
        };
        let mut request = self.authorized(self.http.request(method.clone(), resource.clone()));
        if !content_type.is_empty() {
            request = request
                .header(header::CONTENT_TYPE, content_type)
                .header(header::IF_MATCH, "\"*\"")
                .body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {resource}: {e}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(status);
        }
        let text = response.text().await.unwrap_or_default();
        Err(format!("{method} {resource}: {status}: {}", text.trim()))
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    fn refuse(&self, reason: String) {
        let _ = self.deliver.send(Received {
            at: Instant::now(),
            message: Incoming::Refused {
                remote: self.remote,
                reason,
            },
        });
    }
}

/// `ice-ufrag` and `ice-pwd` of a description, if it has them.
fn ice_credentials(sdp: &str) -> Option<(String, String)> {
    let value = |name: &str| {
        sdp.lines()
            .find_map(|line| line.trim_end().strip_prefix(name))
            .map(str::to_owned)
    };
    Some((value("a=ice-ufrag:")?, value("a=ice-pwd:")?))
}

/// Candidates as an SDP fragment (RFC 8840 §4.4): the credentials, then
/// each candidate under its media section's mid.
fn sdp_fragment(credentials: Option<&(String, String)>, candidates: &[CandidateInit]) -> String {
    let mut fragment = String::new();
    if let Some((ufrag, pwd)) = credentials {
        fragment.push_str(&format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n"));
    }
    let mut mid: Option<&str> = None;
    for candidate in candidates {
        let this_mid = candidate.sdp_mid.as_deref().unwrap_or("0");
        if mid != Some(this_mid) {
            fragment.push_str(&format!(
                "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:{this_mid}\r\n"
            ));
            mid = Some(this_mid);
        }
        let line = candidate.candidate.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        fragment.push_str(&format!("a={line}\r\n"));
    }
    fragment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fragment_carries_the_credentials_and_each_candidate_under_its_mid() {
        let candidate = |line: &str, mid: &str| CandidateInit {
            candidate: line.into(),
            sdp_mid: Some(mid.into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        };
        let credentials = ("uf".to_owned(), "pw".to_owned());
        let fragment = sdp_fragment(
            Some(&credentials),
            &[
                candidate("candidate:1 1 udp 1 10.0.0.1 5000 typ host", "0"),
                candidate("candidate:2 1 udp 1 10.0.0.1 5002 typ host", "0"),
            ],
        );
        assert_eq!(
            fragment,
            "a=ice-ufrag:uf\r\na=ice-pwd:pw\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
             a=candidate:1 1 udp 1 10.0.0.1 5000 typ host\r\n\
             a=candidate:2 1 udp 1 10.0.0.1 5002 typ host\r\n"
        );
    }

    #[test]
    fn credentials_come_from_the_description() {
        let sdp = "v=0\r\na=ice-ufrag:abcd\r\na=ice-pwd:secret\r\n";
        assert_eq!(
            ice_credentials(sdp),
            Some(("abcd".to_owned(), "secret".to_owned()))
        );
        assert_eq!(ice_credentials("v=0\r\n"), None);
    }
}
