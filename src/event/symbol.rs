//! Interning string keys to integers before they enter differential.
//!
//! Views key by strings (event types, countries, products), but differential sorts,
//! hashes and exchanges its keys on every update, and a `u64` does all of that several times
//! faster than a `String`. A [`Sym`] is the 64-bit xxh3 hash of its string, so every worker and
//! every process derives the same symbol for the same string with no coordination.
//!
//! A hash collision must never merge two keys: the process-wide [`Symbols`] table remembers the
//! string behind every symbol, and a second string that hashes to a taken symbol is given the
//! next free one instead. The per-worker [`Interner`] caches the strings it has seen, so the hot
//! path is one hash, one probe of a local map and one string comparison, with no lock and no
//! allocation.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::num::NonZeroU64;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::same_str;

/// An interned string: an integer that stands for one string within a process.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Sym(NonZeroU64);

impl Sym {
    /// The symbol's integer value.
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// The symbol whose value [`Sym::get`] gave, for code that packs symbols into words; `None`
    /// for 0, which no symbol is.
    pub fn from_word(word: u64) -> Option<Sym> {
        NonZeroU64::new(word).map(Sym)
    }
}

/// A key that is counted but never shown, such as a user: the 128-bit xxh3 hash of its string.
///
/// Distinct counts key by users, and users are many (one per few dozen events in the generator):
/// interning them would keep every user's string for the life of the process, in the shared
/// table and in every worker's cache, for ids no view ever prints. A 128-bit hash needs no
/// table. Two ids could only be counted as one if their hashes collided, which for a trillion
/// distinct ids has a probability below 10^-14.
///
/// The hash is kept as its high and low 64-bit halves, in that order (so it orders as the
/// 128-bit number): a `u128` would align it, and every [`Event`](super::Event) and hash-table
/// entry holding it, to 16 bytes, and an event would carry 8 bytes of padding.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IdHash(u64, u64);

impl IdHash {
    /// The hash of `s`.
    pub fn of(s: &str) -> Self {
        let hash = xxhash_rust::xxh3::xxh3_128(s.as_bytes());
        IdHash((hash >> 64) as u64, hash as u64)
    }

    /// Its two words.
    pub fn words(self) -> (u64, u64) {
        (self.0, self.1)
    }
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by integers that are already hashes (symbols).
pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;

/// The process-wide table from symbols to strings.
#[derive(Debug)]
pub struct Symbols {
    table: RwLock<IdMap<Arc<str>>>,
    mask: u64,
}

impl Default for Symbols {
    fn default() -> Self {
        Self::with_hash_bits(64)
    }
}

impl Symbols {
    /// A table whose symbols use only the low `bits` bits of the hash. Only tests want fewer than
    /// 64: with a handful of bits, collisions are common and the collision path gets exercised.
    pub fn with_hash_bits(bits: u32) -> Self {
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        Symbols {
            table: RwLock::new(IdMap::default()),
            mask,
        }
    }

    /// The hash a string starts probing from.
    pub fn hash(&self, s: &str) -> u64 {
        xxhash_rust::xxh3::xxh3_64(s.as_bytes()) & self.mask
    }

    /// The symbol of `s`, whose [`Symbols::hash`] is `hash`, adding it to the table if new.
    pub fn intern_hashed(&self, s: &str, hash: u64) -> Sym {
        if let Some(sym) = self.probe(
            &self.table.read().unwrap_or_else(|e| e.into_inner()),
            s,
            hash,
        ) {
            return sym;
        }
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        let mut candidate = hash;
        loop {
            let id = candidate.max(1);
            match table.get(&id) {
                Some(taken) if **taken == *s => return Sym(NonZeroU64::new(id).expect("id >= 1")),
                Some(_) => candidate = id.wrapping_add(1) & self.mask,
                None => {
                    table.insert(id, Arc::from(s));
                    return Sym(NonZeroU64::new(id).expect("id >= 1"));
                }
            }
        }
    }

    fn probe(&self, table: &IdMap<Arc<str>>, s: &str, hash: u64) -> Option<Sym> {
        let mut candidate = hash;
        loop {
            let id = candidate.max(1);
            match table.get(&id) {
                Some(taken) if **taken == *s => return NonZeroU64::new(id).map(Sym),
                Some(_) => candidate = id.wrapping_add(1) & self.mask,
                None => return None,
            }
        }
    }

    /// The symbol of `s`, adding it to the table if new.
    pub fn intern(&self, s: &str) -> Sym {
        self.intern_hashed(s, self.hash(s))
    }

    /// The string behind a symbol of this table.
    pub fn resolve(&self, sym: Sym) -> Arc<str> {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sym.get())
            .cloned()
            .unwrap_or_else(|| Arc::from(format!("#{}", sym.get())))
    }

    /// Adds a symbol another process interned, with its string: in a cluster every process
    /// learns the strings behind the symbols the others made. `Err` with the string already
    /// behind `sym` if it is another one: two strings whose hashes collided were given the same
    /// symbol by different processes (the collision path of [`Symbols::intern`] is per process),
    /// which the cluster cannot tell apart.
    pub fn learn(&self, sym: u64, s: &str) -> Result<(), Arc<str>> {
        if let Some(taken) = self
            .table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sym)
        {
            return if **taken == *s {
                Ok(())
            } else {
                Err(taken.clone())
            };
        }
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        match table.get(&sym) {
            Some(taken) if **taken != *s => Err(taken.clone()),
            Some(_) => Ok(()),
            None => {
                table.insert(sym, Arc::from(s));
                Ok(())
            }
        }
    }

    /// How many strings the table holds.
    pub fn len(&self) -> usize {
        self.table.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A worker's interner: a lock-free cache in front of the shared [`Symbols`].
pub struct Interner {
    symbols: Arc<Symbols>,
    cache: IdMap<(Box<str>, Sym)>,
    /// In a cluster: the symbols this interner has met since [`Interner::take_met`], with their
    /// strings, for the other processes to learn.
    met: Option<Vec<(u64, String)>>,
}

/// Past this many cached strings the cache starts over, so it cannot outgrow the live key space.
const CACHE_LIMIT: usize = 1 << 20;

impl Interner {
    /// An interner backed by the process-wide table `symbols`.
    pub fn new(symbols: Arc<Symbols>) -> Self {
        Interner {
            symbols,
            cache: IdMap::default(),
            met: None,
        }
    }

    /// An interner that also notes every symbol it meets for the first time (or again after
    /// its cache starts over), for [`Interner::take_met`].
    pub fn noting(symbols: Arc<Symbols>) -> Self {
        Interner {
            met: Some(Vec::new()),
            ..Interner::new(symbols)
        }
    }

    /// The symbols met since the last call, with their strings (always none unless
    /// [`Interner::noting`]).
    pub fn take_met(&mut self) -> Vec<(u64, String)> {
        self.met.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The symbol of `s`.
    pub fn intern(&mut self, s: &str) -> Sym {
        let hash = self.symbols.hash(s);
        if let Some((cached, sym)) = self.cache.get(&hash)
            && same_str(cached, s)
        {
            return *sym;
        }
        let sym = self.symbols.intern_hashed(s, hash);
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        // Only the first string seen for a hash is cached; a colliding one takes the slow path.
        self.cache
            .entry(hash)
            .or_insert_with(|| (Box::from(s), sym));
        if let Some(met) = &mut self.met {
            met.push((sym.get(), s.to_owned()));
        }
        sym
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_string_gets_the_same_symbol_on_every_worker() {
        let symbols = Arc::new(Symbols::default());
        let mut a = Interner::new(symbols.clone());
        let mut b = Interner::new(symbols.clone());
        assert_eq!(a.intern("purchase"), b.intern("purchase"));
        assert_ne!(a.intern("purchase"), a.intern("page_view"));
        assert_eq!(&*symbols.resolve(a.intern("café")), "café");
    }

    #[test]
    fn ids_hash_alike_everywhere_and_apart_from_each_other() {
        assert_eq!(IdHash::of("user_1"), IdHash::of("user_1"));
        let ids: std::collections::BTreeSet<IdHash> = (0..100_000)
            .map(|i| IdHash::of(&format!("user_{i}")))
            .collect();
        assert_eq!(ids.len(), 100_000);
    }

    #[test]
    fn a_process_learns_the_symbols_another_met() {
        let (here, there) = (Symbols::default(), Arc::new(Symbols::default()));
        let mut interner = Interner::noting(there.clone());
        let sym = interner.intern("purchase");
        interner.intern("purchase");
        let met = interner.take_met();
        assert_eq!(met, vec![(sym.get(), "purchase".to_owned())]);
        assert!(interner.take_met().is_empty());
        for (id, s) in &met {
            here.learn(*id, s).unwrap();
        }
        assert_eq!(&*here.resolve(sym), "purchase");
        assert_eq!(&*here.learn(sym.get(), "view").unwrap_err(), "purchase");
    }

    #[test]
    fn colliding_strings_never_share_a_symbol() {
        // With 3 hash bits, 200 strings collide constantly.
        let symbols = Arc::new(Symbols::with_hash_bits(3));
        let mut workers = [
            Interner::new(symbols.clone()),
            Interner::new(symbols.clone()),
        ];
        let strings: Vec<String> = (0..7).map(|i| format!("user_{i}")).collect();
        let mut seen = std::collections::BTreeMap::new();
        for round in 0..3 {
            for (i, s) in strings.iter().enumerate() {
                let sym = workers[(i + round) % 2].intern(s);
                assert_eq!(&*symbols.resolve(sym), s.as_str());
                assert_eq!(
                    *seen.entry(s.clone()).or_insert(sym),
                    sym,
                    "{s} changed symbol"
                );
            }
        }
        let distinct: std::collections::BTreeSet<_> = seen.values().collect();
        assert_eq!(distinct.len(), strings.len());
    }
}
