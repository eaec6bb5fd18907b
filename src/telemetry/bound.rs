//! Attribute sets kept across calls: one per combination of what a measurement is labelled
//! with (model, served model, region, server, status, error type). A measurement finds its set
//! with one cheap lookup instead of building and hashing its attributes again, and records
//! through a handle bound to it once (OpenTelemetry's `bind`, experimental in the SDK; with
//! the `export` feature, which turns it on): the SDK then skips its own per-measurement sort,
//! hash and lookup of the attributes. Without `export` the set's attributes are still built
//! once and reused.
//!
//! The sets are bounded: past [`MAX_SETS`] combinations a measurement is recorded with
//! attributes built for it, as without this cache.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{OnceLock, RwLock};

use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::KeyValue;

/// Most attribute-set combinations kept per kind of measurement (calls, attempts).
pub(crate) const MAX_SETS: usize = 1024;

/// What a measurement is labelled with, borrowed from the call: the key of its set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Labels<'a> {
    pub(crate) model: Option<&'a str>,
    pub(crate) served: Option<&'a str>,
    pub(crate) region: &'a str,
    pub(crate) server: Option<&'a str>,
    pub(crate) status: Option<u16>,
    pub(crate) error: Option<&'a str>,
}

impl Labels<'_> {
    fn hash(&self) -> u64 {
        let mut h = FxHasher::default();
        for part in [
            self.model,
            self.served,
            Some(self.region),
            self.server,
            self.error,
        ] {
            match part {
                Some(s) => {
                    h.write(s.as_bytes());
                    h.write_u64(s.len() as u64 + 1);
                }
                None => h.write_u64(0),
            }
        }
        h.write_u64(self.status.map_or(0, |s| u64::from(s) + 1));
        h.finish()
    }

    fn owned(&self) -> OwnedLabels {
        let own = |s: Option<&str>| s.map(Box::<str>::from);
        OwnedLabels {
            model: own(self.model),
            served: own(self.served),
            region: self.region.into(),
            server: own(self.server),
            status: self.status,
            error: own(self.error),
        }
    }
}

#[derive(Debug)]
struct OwnedLabels {
    model: Option<Box<str>>,
    served: Option<Box<str>>,
    region: Box<str>,
    server: Option<Box<str>>,
    status: Option<u16>,
    error: Option<Box<str>>,
}

impl OwnedLabels {
    fn is(&self, l: &Labels<'_>) -> bool {
        self.status == l.status
            && self.model.as_deref() == l.model
            && self.served.as_deref() == l.served
            && *self.region == *l.region
            && self.server.as_deref() == l.server
            && self.error.as_deref() == l.error
    }
}

/// The sets of one kind of measurement, each holding an `E` (its points).
#[derive(Debug)]
pub(crate) struct Sets<E> {
    /// By the labels' hash; the labels themselves are compared, so a collision costs a
    /// comparison, never a wrong set.
    sets: RwLock<Map<E>>,
    len: std::sync::atomic::AtomicUsize,
}

impl<E> Default for Sets<E> {
    fn default() -> Self {
        Sets {
            sets: RwLock::default(),
            len: Default::default(),
        }
    }
}

impl<E: Default> Sets<E> {
    /// Runs `f` with the set of `labels`, made now if it is new. Past [`MAX_SETS`], `f` gets
    /// a set of its own that lives for this measurement only.
    pub(crate) fn with<R>(&self, labels: &Labels<'_>, f: impl FnOnce(&E) -> R) -> R {
        use std::sync::atomic::Ordering::Relaxed;
        let hash = labels.hash();
        {
            let sets = self.sets.read().unwrap_or_else(|e| e.into_inner());
            if let Some((_, e)) = find(&sets, hash, labels) {
                return f(e);
            }
        }
        if self.len.load(Relaxed) >= MAX_SETS {
            return f(&E::default());
        }
        let mut sets = self.sets.write().unwrap_or_else(|e| e.into_inner());
        // Another call may have made it, or filled the last place, since the read.
        if let Some((_, e)) = find(&sets, hash, labels) {
            return f(e);
        }
        if self.len.load(Relaxed) >= MAX_SETS {
            return f(&E::default());
        }
        let bucket = sets.entry(hash).or_default();
        bucket.push((labels.owned(), E::default()));
        self.len.fetch_add(1, Relaxed);
        let (_, made) = &bucket[bucket.len() - 1];
        f(made)
    }
}

type Map<E> = HashMap<u64, Vec<(OwnedLabels, E)>, BuildHasherDefault<Passthrough>>;

fn find<'m, E>(sets: &'m Map<E>, hash: u64, labels: &Labels<'_>) -> Option<&'m (OwnedLabels, E)> {
    sets.get(&hash)?.iter().find(|(l, _)| l.is(labels))
}

/// One instrument at one attribute set, bound on its first measurement (so a set that never
/// sees, say, a stream never exports an empty time-to-first-chunk series).
pub(crate) struct Point<I: Instrument>(OnceLock<I::Made>);

impl<I: Instrument> Default for Point<I> {
    fn default() -> Self {
        Point(OnceLock::new())
    }
}

impl<I: Instrument> std::fmt::Debug for Point<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Point(made)"
        } else {
            "Point"
        })
    }
}

impl<I: Instrument> Point<I> {
    /// Records `value` on `instrument` at this point's set, whose attributes `attributes`
    /// builds the first time.
    pub(crate) fn record(
        &self,
        instrument: &I,
        value: I::Value,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) {
        let made = self.0.get_or_init(|| instrument.make(attributes()));
        instrument.record_made(made, value);
    }
}

/// A synchronous instrument and what it keeps of an attribute set: a bound handle with the
/// `export` feature (the SDK's `bind` is compiled in), else the attributes themselves.
pub(crate) trait Instrument {
    type Value: Copy;
    type Made: Send + Sync;
    fn make(&self, attributes: Vec<KeyValue>) -> Self::Made;
    fn record_made(&self, made: &Self::Made, value: Self::Value);
}

#[cfg(feature = "export")]
impl<T: Copy> Instrument for Histogram<T> {
    type Value = T;
    type Made = opentelemetry::metrics::BoundHistogram<T>;
    fn make(&self, attributes: Vec<KeyValue>) -> Self::Made {
        self.bind(&attributes)
    }
    fn record_made(&self, made: &Self::Made, value: T) {
        made.record(value)
    }
}

#[cfg(feature = "export")]
impl<T: Copy> Instrument for Counter<T> {
    type Value = T;
    type Made = opentelemetry::metrics::BoundCounter<T>;
    fn make(&self, attributes: Vec<KeyValue>) -> Self::Made {
        self.bind(&attributes)
    }
    fn record_made(&self, made: &Self::Made, value: T) {
        made.add(value)
    }
}

#[cfg(not(feature = "export"))]
impl<T: Copy> Instrument for Histogram<T> {
    type Value = T;
    type Made = Vec<KeyValue>;
    fn make(&self, attributes: Vec<KeyValue>) -> Self::Made {
        attributes
    }
    fn record_made(&self, made: &Self::Made, value: T) {
        self.record(value, made)
    }
}

#[cfg(not(feature = "export"))]
impl<T: Copy> Instrument for Counter<T> {
    type Value = T;
    type Made = Vec<KeyValue>;
    fn make(&self, attributes: Vec<KeyValue>) -> Self::Made {
        attributes
    }
    fn record_made(&self, made: &Self::Made, value: T) {
        self.add(value, made)
    }
}

/// The map's keys are already hashes.
#[derive(Default)]
struct Passthrough(u64);

impl Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The Firefox/rustc hash: a multiply and a rotate per word, for short label strings.
#[derive(Default)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let mut rest = [0u8; 8];
        let tail = chunks.remainder();
        rest[..tail.len()].copy_from_slice(tail);
        self.add(u64::from_le_bytes(rest));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Made(AtomicUsize);

    fn labels(model: &str, status: u16) -> Labels<'_> {
        Labels {
            model: Some(model),
            region: "us",
            status: Some(status),
            ..Labels::default()
        }
    }

    #[test]
    fn one_set_per_combination_and_each_found_again() {
        let sets: Sets<Made> = Sets::default();
        for _ in 0..3 {
            for (m, s) in [("a", 200), ("a", 429), ("b", 200)] {
                sets.with(&labels(m, s), |e| e.0.fetch_add(1, Ordering::Relaxed));
            }
        }
        assert_eq!(sets.len.load(Ordering::Relaxed), 3);
        sets.with(&labels("a", 429), |e| {
            assert_eq!(e.0.load(Ordering::Relaxed), 3)
        });
        // Fields are not confused with each other: the same string as model or as served
        // model, or split differently, is another set.
        let served = Labels {
            served: Some("a"),
            region: "us",
            status: Some(200),
            ..Labels::default()
        };
        sets.with(&served, |e| assert_eq!(e.0.load(Ordering::Relaxed), 0));
        assert_ne!(
            labels("ab", 200).hash(),
            Labels {
                served: Some("b"),
                ..labels("a", 200)
            }
            .hash()
        );
    }

    #[test]
    fn past_the_bound_each_measurement_gets_a_set_of_its_own() {
        let sets: Sets<Made> = Sets::default();
        let names: Vec<String> = (0..MAX_SETS + 10).map(|i| format!("m{i}")).collect();
        for n in &names {
            sets.with(&labels(n, 200), |e| e.0.fetch_add(1, Ordering::Relaxed));
        }
        assert_eq!(sets.len.load(Ordering::Relaxed), MAX_SETS);
        let last = names.last().unwrap();
        sets.with(&labels(last, 200), |e| {
            assert_eq!(e.0.load(Ordering::Relaxed), 0)
        });
        sets.with(&labels(&names[0], 200), |e| {
            assert_eq!(e.0.load(Ordering::Relaxed), 1)
        });
    }
}
