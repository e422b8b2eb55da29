//! One scenario split across machines (`callprobe run --shard I/N`): a
//! deterministic assignment of peers to N shards that never cuts a call,
//! and the part of the scenario one shard runs.
//!
//! Peers that a call, a hangup or a media fault names together form one
//! group; groups go, largest first, to the shard with the fewest peers so
//! far (ties: the lowest peer index, the lowest shard). The same scenario
//! and N always give the same assignment, on every machine.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Action, Scenario};

/// Shard `index` (from 0) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl fmt::Display for Shard {
    /// As written on the command line: `1/4` is the first of four.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `I/N`, I from 1 to N.
    fn from_str(text: &str) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: write the shard as I/N, such as 1/4"))?;
        let i: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: I is not a number"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: N is not a number"))?;
        Shard::new(i.wrapping_sub(1), n)
            .ok_or_else(|| format!("{text:?}: I must be from 1 to N, and N at least 1"))
    }
}

impl Shard {
    /// Shard `index` (from 0) of `count`, if it is one.
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (count >= 1 && index < count).then_some(Shard { index, count })
    }
}

/// The shard each peer runs in, by peer index.
pub(crate) fn assignment(scenario: &Scenario, count: u32) -> Vec<u32> {
    let peers = scenario.peers.len();
    let mut groups = Groups::new(peers);
    for action in &scenario.actions {
        let named = action.verb.peers();
        for pair in named.windows(2) {
            groups.join(pair[0], pair[1]);
        }
    }
    // Each group's members (in index order), largest group first.
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut group_of_root = vec![usize::MAX; peers];
    for peer in 0..peers {
        let root = groups.root(peer);
        if group_of_root[root] == usize::MAX {
            group_of_root[root] = members.len();
            members.push(Vec::new());
        }
        members[group_of_root[root]].push(peer);
    }
    members.sort_by_key(|m| (std::cmp::Reverse(m.len()), m[0]));
    let mut load = vec![0usize; count.max(1) as usize];
    let mut shard_of = vec![0u32; peers];
    for group in members {
        let lightest = (0..load.len())
            .min_by_key(|&s| (load[s], s))
            .expect("at least one shard");
        load[lightest] += group.len();
        for peer in group {
            shard_of[peer] = lightest as u32;
        }
    }
    shard_of
}

/// The part of `scenario` that `shard` runs: its peers (in their order, so
/// renumbered from 0) and the actions that concern them.
pub(crate) fn part(scenario: &Scenario, shard: Shard) -> Scenario {
    let shard_of = assignment(scenario, shard.count);
    let mut new_index = vec![usize::MAX; scenario.peers.len()];
    let mut peers = Vec::new();
    for (index, peer) in scenario.peers.iter().enumerate() {
        if shard_of[index] == shard.index {
            new_index[index] = peers.len();
            peers.push(peer.clone());
        }
    }
    let actions = scenario
        .actions
        .iter()
        // A server's crash is every shard's: each starts its own server.
        .filter(|a| a.verb.actor().is_none_or(|p| shard_of[p] == shard.index))
        .map(|a| Action {
            verb: a.verb.with_peers(&|p| new_index[p]),
            ..a.clone()
        })
        .collect();
    Scenario {
        peers,
        actions,
        ..scenario.clone()
    }
}

/// Union-find over peer indices.
struct Groups {
    parent: Vec<usize>,
}

impl Groups {
    fn new(n: usize) -> Self {
        Groups {
            parent: (0..n).collect(),
        }
    }

    fn root(&mut self, mut peer: usize) -> usize {
        while self.parent[peer] != peer {
            self.parent[peer] = self.parent[self.parent[peer]];
            peer = self.parent[peer];
        }
        peer
    }

    fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        // The lower index is the root: the grouping never depends on order.
        let (low, high) = (a.min(b), a.max(b));
        self.parent[high] = low;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Source, Verb};
    use proptest::prelude::*;

    /// A scenario of `peers` peers and these calls (as index pairs).
    fn scenario(peers: usize, calls: &[(usize, usize)]) -> Scenario {
        let mut text = format!(
            "name = \"split\"\nduration = \"10s\"\n[[peers]]\nname = \"p\"\ncount = {peers}\n"
        );
        for (k, (from, to)) in calls.iter().enumerate() {
            text += &format!(
                "[[calls]]\nfrom = \"p-{}\"\nto = \"p-{}\"\nat = \"{}ms\"\n",
                from + 1,
                to + 1,
                k * 10
            );
        }
        Scenario::parse(&Source::new("split.toml", text)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn shards_are_written_from_one() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 0, count: 4 }));
        assert_eq!("4/4".parse::<Shard>().unwrap().to_string(), "4/4");
        for bad in ["0/4", "5/4", "1/0", "1", "a/b"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn pairs_split_evenly_and_keep_their_calls() {
        let calls: Vec<(usize, usize)> = (0..20).map(|i| (2 * i, 2 * i + 1)).collect();
        let scenario = scenario(40, &calls);
        let shard_of = assignment(&scenario, 4);
        for shard in 0..4 {
            assert_eq!(shard_of.iter().filter(|&&s| s == shard).count(), 10);
        }
        let part = part(&scenario, Shard { index: 1, count: 4 });
        assert_eq!(part.peers.len(), 10);
        assert_eq!(part.call_count(), 5);
        // Renumbered: each call joins the same two peers as it did.
        let name = |i: usize| format!("p-{}", i + 1);
        for action in &part.actions {
            if let Verb::Call { from, to, .. } = action.verb {
                let named = (part.peers[from].name.clone(), part.peers[to].name.clone());
                assert!(
                    calls.iter().any(|&(a, b)| (name(a), name(b)) == named),
                    "{named:?}"
                );
            }
        }
    }

    fn topology() -> impl Strategy<Value = (usize, Vec<(usize, usize)>, u32)> {
        (2usize..40).prop_flat_map(|peers| {
            let call = (0..peers, 0..peers).prop_filter("two peers", |(a, b)| a != b);
            // One call per pair at most: two would overlap.
            let calls = proptest::collection::vec(call, 0..30).prop_map(|calls| {
                let mut seen = std::collections::HashSet::new();
                calls
                    .into_iter()
                    .filter(|&(a, b)| seen.insert((a.min(b), a.max(b))))
                    .collect::<Vec<_>>()
            });
            (Just(peers), calls, 1u32..8)
        })
    }

    proptest! {
        #![proptest_config(crate::proptest_seed::config(64))]

        /// The split is a function of the scenario and N, never cuts a
        /// call, and is balanced as well as whole groups allow.
        #[test]
        fn the_split_is_stable_and_never_cuts_a_call((peers, calls, n) in topology()) {
            let scenario = scenario(peers, &calls);
            let shard_of = assignment(&scenario, n);
            prop_assert_eq!(&shard_of, &assignment(&scenario.clone(), n));
            prop_assert_eq!(shard_of.len(), peers);
            for &(a, b) in &calls {
                prop_assert_eq!(shard_of[a], shard_of[b], "call {}-{} was cut", a, b);
            }
            // Every peer and every call lands in exactly one part.
            let parts: Vec<Scenario> = (0..n).map(|i| part(&scenario, Shard { index: i, count: n })).collect();
            prop_assert_eq!(parts.iter().map(|p| p.peers.len()).sum::<usize>(), peers);
            prop_assert_eq!(parts.iter().map(Scenario::call_count).sum::<usize>(), calls.len());
            // Greedy balance: no shard exceeds the lightest by more than
            // the largest group.
            let mut sizes = vec![0usize; peers];
            let mut groups = Groups::new(peers);
            for &(a, b) in &calls { groups.join(a, b); }
            for p in 0..peers { sizes[groups.root(p)] += 1; }
            let largest = sizes.into_iter().max().unwrap_or(0);
            let loads: Vec<usize> = parts.iter().map(|p| p.peers.len()).collect();
            let (min, max) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
            prop_assert!(max - min <= largest, "loads {:?}, largest group {}", loads, largest);
        }
    }
}
