//! The attack suite: what an attacker on the open internet tries, against the
//! real `jamuna serve` (issue 16's findings, one module each).

mod customer_view;
mod doors;
mod erasure;
mod held;
mod identity;
mod limits;
mod sessions;
mod surface;
mod tokens;
