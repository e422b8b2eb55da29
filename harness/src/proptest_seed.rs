//! Property tests gate merges, so they run the same cases every time: a
//! fixed seed, unless `PROPTEST_RNG_SEED` asks for another (explore with
//! `PROPTEST_RNG_SEED=$RANDOM cargo test`; a failure prints its input, and
//! the unit tests keep what the exploration found).

use proptest::test_runner::{Config, RngSeed};

pub(crate) fn config(cases: u32) -> Config {
    let mut config = Config::with_cases(cases);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x0ca1_1b0e);
    }
    // Failures are printed with their smallest input; no files are left
    // in the source tree.
    config.failure_persistence = None;
    config
}
