//! Waiting and ports, shared by every test and test peer: poll a condition
//! until a deadline, and find free loopback ports.

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

/// How often a condition is looked at again.
const EVERY: Duration = Duration::from_millis(25);

/// Polls `condition` until it holds (true) or `limit` passes (false).
pub fn poll(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(EVERY);
    }
}

/// Polls `condition` until it holds; fails the test naming `what` after `limit`.
#[track_caller]
pub fn wait_until(limit: Duration, what: &str, condition: impl FnMut() -> bool) {
    if !poll(limit, condition) {
        panic!("timed out after {limit:?} waiting for {what}");
    }
}

/// `N` different ports free right now on the loopback interface (all are
/// probed at once, so no two are the same).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("probe a free port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("port").port())
}
