//! The math of `keel sweep`: search spaces read from `space.yaml`, the
//! strategies that pick each trial's parameters (grid, random, TPE) and the
//! median rule that stops unpromising trials early. Pure functions of their
//! inputs and a seed; running trials is the sweep driver's business.

pub mod driver;
pub mod prune;
pub mod search;
pub mod space;
pub mod state;
pub mod workspace;
