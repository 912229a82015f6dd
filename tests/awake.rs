//! The pool's helpers are kept awake after a split, and only for a while: alone in its own
//! process, so that no other test's splits keep them awake.

use backprop::machinery::awake::{after_split, helpers_awake, keepers, keepers_started};
use backprop::machinery::parallel::on_thread_pool;

#[test]
fn a_split_starts_one_keeper_and_it_leaves_once_splits_stop() {
    assert_eq!((keepers_started(), keepers()), (0, 0));
    on_thread_pool(|| after_split(2));
    assert_eq!(
        keepers_started(),
        1,
        "a split with the helpers idle starts a keeper"
    );
    // Nothing splits again: the keeper leaves (it spins for a millisecond at most after the
    // last split, whatever the machine's speed; waited for, not timed).
    while keepers() > 0 {
        std::thread::yield_now();
    }
    assert!(!helpers_awake());
    assert_eq!(keepers_started(), 1);
}
