//! Real-time: the WebSocket protocol, the sockets, and the hub that pushes
//! new events from the log to the sockets allowed to see them.

#[cfg(test)]
mod fuzz;
pub mod hub;
pub mod limits;
pub mod presence;
pub mod protocol;
pub mod session;
