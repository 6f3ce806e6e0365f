//! Sharing of equal immutable values between cached objects. Pods of one workload carry the
//! same labels, ports and node names; the Pod cache keeps one copy of each (a label map alone
//! is a ~0.5 kB B-tree node even for one label).
//!
//! Entries no cached object uses any more are dropped in a sweep whenever the table has
//! doubled since the last one, so the table stays within twice the live values (amortized
//! O(1) per lookup).

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

use parking_lot::Mutex;

/// Smallest table size that triggers a sweep.
const MIN_SWEEP: usize = 1024;

struct State<T: ?Sized> {
    set: HashSet<Arc<T>>,
    sweep_at: usize,
}

/// A table of shared values.
pub struct Interner<T: ?Sized> {
    state: Mutex<State<T>>,
}

impl<T: ?Sized + Eq + Hash> Interner<T> {
    /// An empty table.
    pub fn new() -> Self {
        Interner {
            state: Mutex::new(State {
                set: HashSet::new(),
                sweep_at: MIN_SWEEP,
            }),
        }
    }

    /// The shared copy of `value`; `make` builds it when there is none yet.
    pub fn intern(&self, value: &T, make: impl FnOnce() -> Arc<T>) -> Arc<T> {
        let mut state = self.state.lock();
        if let Some(shared) = state.set.get(value) {
            return shared.clone();
        }
        let shared = make();
        state.set.insert(shared.clone());
        sweep_if_grown(&mut state);
        shared
    }

    #[cfg(test)]
    /// Number of values in the table (live or not yet swept).
    pub fn len(&self) -> usize {
        self.state.lock().set.len()
    }
}

impl<T: Eq + Hash> Interner<T> {
    /// The shared copy of an owned value.
    pub fn intern_owned(&self, value: T) -> Arc<T> {
        let mut state = self.state.lock();
        if let Some(shared) = state.set.get(&value) {
            return shared.clone();
        }
        let shared = Arc::new(value);
        state.set.insert(shared.clone());
        sweep_if_grown(&mut state);
        shared
    }
}

impl<T: ?Sized + Eq + Hash> Default for Interner<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Drops the values only the table holds, once it doubled since the last sweep.
fn sweep_if_grown<T: ?Sized + Eq + Hash>(state: &mut State<T>) {
    if state.set.len() >= state.sweep_at {
        state.set.retain(|v| Arc::strong_count(v) > 1);
        state.sweep_at = (state.set.len() * 2).max(MIN_SWEEP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn equal_values_share_one_allocation() {
        let interner = Interner::<str>::new();
        let a = interner.intern("node-1", || Arc::from("node-1"));
        let b = interner.intern("node-1", || Arc::from("node-1"));
        let c = interner.intern("node-2", || Arc::from("node-2"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        let labels = Interner::<BTreeMap<String, String>>::new();
        let m = |v: &str| BTreeMap::from([("app".to_string(), v.to_string())]);
        let x = labels.intern_owned(m("web"));
        let y = labels.intern_owned(m("web"));
        assert!(Arc::ptr_eq(&x, &y));
        assert_eq!(*x, m("web"));
    }

    #[test]
    fn unused_values_are_swept_once_the_table_doubles() {
        let interner = Interner::<str>::new();
        let kept: Vec<Arc<str>> = (0..10)
            .map(|i| {
                let s = format!("kept-{i}");
                interner.intern(&s, || Arc::from(s.as_str()))
            })
            .collect();
        for i in 0..MIN_SWEEP * 4 {
            let s = format!("gone-{i}");
            drop(interner.intern(&s, || Arc::from(s.as_str())));
        }
        // Never more than twice the live values (or the minimum sweep size).
        assert!(interner.len() <= MIN_SWEEP, "{} entries", interner.len());
        for k in &kept {
            let again = interner.intern(k, || Arc::from(&**k));
            assert!(Arc::ptr_eq(k, &again), "live values survive sweeps");
        }
    }
}
