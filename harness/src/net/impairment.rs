//! What one direction of a peer's link suffers, and how that becomes a
//! `str0m-netem` configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use str0m_netem::{Bitrate, DataSize, GilbertElliot, NetemConfig, Probability, RandomLoss};

/// Which way, from the peer's point of view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Direction {
    /// What the peer receives.
    In,
    /// What the peer sends.
    Out,
    #[default]
    Both,
}

impl Direction {
    pub(crate) fn includes_in(self) -> bool {
        matches!(self, Direction::In | Direction::Both)
    }

    pub(crate) fn includes_out(self) -> bool {
        matches!(self, Direction::Out | Direction::Both)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "model")]
pub(crate) enum Loss {
    /// Each datagram lost independently.
    Random { ratio: f32 },
    /// Losses come in bursts (Gilbert-Elliott: a good state that loses
    /// nothing and a bad state that loses everything), with this mean
    /// burst length in datagrams and this long-run ratio.
    Bursty { ratio: f32, mean_burst: f32 },
}

/// Everything is optional; the default impairs nothing.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Impairment {
    pub loss: Option<Loss>,
    pub delay: Duration,
    /// Delay varies uniformly within ± this much.
    pub jitter: Duration,
    /// A bottleneck: datagrams queue behind one another at this rate.
    pub rate_bps: Option<u64>,
    /// Nothing gets through.
    pub blackhole: bool,
    /// A share of datagrams delivered twice.
    pub duplicate: Option<f32>,
    /// Every this many datagrams, one skips the delay queue and overtakes
    /// those before it (needs a delay).
    pub reorder_every: Option<u32>,
}

/// A rate-capped link buffers this much time at its rate before it drops.
const QUEUE_TIME: Duration = Duration::from_millis(200);
/// ...but never less than ten full-size datagrams.
const MIN_QUEUE_BYTES: u64 = 15_000;

impl Impairment {
    pub(crate) fn is_clear(&self) -> bool {
        *self == Impairment::default()
    }

    /// Whether media can be lost to it (loss, a blackhole, a rate cap's
    /// queue). Delay, jitter, reordering and duplication lose nothing: a
    /// call through them must still pass the defaults.
    pub(crate) fn loses_media(&self) -> bool {
        self.loss.is_some() || self.blackhole || self.rate_bps.is_some()
    }

    /// The emulator settings for one flow, seeded.
    pub(crate) fn netem(&self, seed: u64) -> NetemConfig {
        let mut config = NetemConfig::new()
            .latency(self.delay)
            .jitter(self.jitter)
            .seed(seed);
        match self.loss {
            Some(Loss::Random { ratio }) => {
                config = config.loss(RandomLoss::new(Probability::new(ratio.clamp(0.0, 1.0))));
            }
            Some(Loss::Bursty { ratio, mean_burst }) => {
                let ratio = ratio.clamp(0.001, 0.999);
                let bad = mean_burst.max(1.0);
                let good = bad * (1.0 - ratio) / ratio;
                let model = GilbertElliot::new()
                    .good_duration(good)
                    .bad_duration(bad)
                    .loss_in_bad(Probability::ONE)
                    .loss_in_good(Probability::ZERO);
                config = config.loss(model);
            }
            None => {}
        }
        if let Some(share) = self.duplicate {
            config = config.duplicate(Probability::new(share.clamp(0.0, 1.0)));
        }
        if let Some(every) = self.reorder_every {
            config = config.reorder_gap(every);
        }
        if let Some(bps) = self.rate_bps {
            let queue = (bps as f64 / 8.0 * QUEUE_TIME.as_secs_f64()) as u64;
            let queue = queue.max(MIN_QUEUE_BYTES);
            config = config.link(
                Bitrate::bps(bps),
                DataSize::bytes(i64::try_from(queue).unwrap_or(i64::MAX)),
            );
        }
        config
    }
}
