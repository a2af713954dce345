//! `given(events).when(command).then(events)`: the harness every aggregate's
//! tests read like.

use crate::{Aggregate, Timestamp};

pub fn now() -> Timestamp {
    chrono::DateTime::from_timestamp(1_750_000_000, 0).expect("a valid fixed time")
}

pub struct Given<A: Aggregate> {
    state: A,
}

pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let mut state = A::default();
    for e in events {
        state.apply(&e);
    }
    Given { state }
}

pub struct When<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> Given<A> {
    pub fn when(self, command: A::Command) -> When<A> {
        let result = self.state.decide(&command, now());
        When { state: self.state, result }
    }
}

impl<A: Aggregate> When<A> {
    #[track_caller]
    pub fn then(self, expected: Vec<A::Event>) -> A {
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected);
                let mut state = self.state;
                for e in &events {
                    state.apply(e);
                }
                state
            }
            Err(e) => panic!("expected events {expected:?}, got error {e:?}"),
        }
    }

    #[track_caller]
    pub fn then_nothing(self) {
        self.then(vec![]);
    }

    #[track_caller]
    pub fn then_err(self, expected: A::Error) {
        match self.result {
            Ok(events) => panic!("expected error {expected:?}, got events {events:?}"),
            Err(e) => assert_eq!(e, expected),
        }
    }
}
