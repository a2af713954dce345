//! The attack suite: what an attacker on the open internet tries, against the
//! real `jamuna serve` (issue 16's findings, one module each).

mod erasure;
mod limits;
mod sessions;
mod tokens;
