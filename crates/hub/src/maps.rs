//! The hub's hash maps. Most keys are client ids or names that clients choose, so the
//! hasher must be fast and must not let a client pick colliding keys: foldhash,
//! seeded at random per process, gives both (std's SipHash showed in profiles).

/// A hash map with the hub's hasher.
pub type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A hash set with the hub's hasher.
pub type Set<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
