//! The three WIT worlds a policy can implement.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which world of `grid:policy` a policy implements, i.e. which question it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum World {
    /// `pricing`: what an order costs and whether its payment is enough.
    Pricing,
    /// `payee`: whether an order's payee is acceptable before the lock.
    Payee,
    /// `authorization`: who gets a session and which requests a session may make.
    Authorization,
}

impl World {
    /// Every world, in a fixed order.
    pub const ALL: [World; 3] = [World::Pricing, World::Payee, World::Authorization];

    /// The world's name in WIT and in file names (`pricing.wasm`).
    pub const fn name(self) -> &'static str {
        match self {
            World::Pricing => "pricing",
            World::Payee => "payee",
            World::Authorization => "authorization",
        }
    }

    /// The fully qualified WIT world, for messages.
    pub const fn wit_id(self) -> &'static str {
        match self {
            World::Pricing => "grid:policy/pricing@0.1.0",
            World::Payee => "grid:policy/payee@0.1.0",
            World::Authorization => "grid:policy/authorization@0.1.0",
        }
    }

    /// Index into per-world arrays.
    pub(crate) const fn index(self) -> usize {
        match self {
            World::Pricing => 0,
            World::Payee => 1,
            World::Authorization => 2,
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A world name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown world {0:?}: expected pricing, payee or authorization")]
pub struct UnknownWorld(pub String);

impl FromStr for World {
    type Err = UnknownWorld;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        World::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| UnknownWorld(s.to_owned()))
    }
}
