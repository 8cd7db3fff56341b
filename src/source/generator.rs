//! The built-in event generator: the seeds' publisher, deterministic and seeded.
//!
//! Event `seq` is a pure function of `(seed, seq)`, so any worker can render any share of the
//! sequence and the same seed always gives the same bytes. Events come in sessions of six: a
//! user (drawn from a user base that grows with the sequence) logs in or lands on a page, browses,
//! and goes down a funnel of `search` (55% of sessions), `add_to_cart` (25%) and `purchase`
//! (10%). Products and prices appear only where they belong (`add_to_cart` and `purchase` carry
//! a price; `login` has no product). One event in seven states its timestamp with a non-UTC
//! offset, one page view in ten carries a field outside the schema (`referrer`, kept in `_doc`),
//! and a chosen fraction of records is malformed on purpose, one of five kinds.

use std::io::Write;
use std::time::{Duration, Instant};

use super::{Chunk, Poll, Source, SourceError};
use crate::event::Position;
use crate::event::Reason;
use crate::event::time::format_rfc3339;

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorSpec {
    /// The seed: same seed, same events.
    pub seed: u64,
    /// Events per second across all workers; `None` for as fast as possible.
    pub rate: Option<f64>,
    /// How many events; `None` for endless.
    pub count: Option<u64>,
    /// The fraction of records made malformed on purpose, from 0 to 1.
    pub bad_fraction: f64,
    /// The timestamp of event 0, microseconds since the Unix epoch, UTC.
    pub start_micros: i64,
}

impl Default for GeneratorSpec {
    fn default() -> Self {
        GeneratorSpec {
            seed: 42,
            rate: None,
            count: None,
            bad_fraction: 0.0,
            start_micros: 1_735_689_600_000_000,
        }
    }
}

/// (name, price in cents) of the catalogue.
const PRODUCTS: [(&str, i64); 24] = [
    ("laptop", 99_999),
    ("smartphone", 69_900),
    ("headphones", 14_950),
    ("monitor", 27_999),
    ("keyboard", 8_999),
    ("mouse", 2_950),
    ("webcam", 5_999),
    ("tablet", 44_900),
    ("smartwatch", 24_999),
    ("charger", 1_999),
    ("usb-c cable", 999),
    ("desk lamp", 3_450),
    ("office chair", 18_900),
    ("standing desk", 39_900),
    ("coffee grinder", 7_500),
    ("café crème machine", 32_900),
    ("Blåhaj plush", 2_999),
    ("北斎 print", 4_500),
    ("backpack", 6_999),
    ("water bottle", 1_850),
    ("running shoes", 11_999),
    ("yoga mat", 2_599),
    ("e-reader", 12_999),
    ("speaker", 9_950),
];

const COUNTRIES: [&str; 12] = [
    "US", "UK", "DE", "FR", "IN", "BR", "JP", "CA", "AU", "ES", "NL", "KR",
];

/// The malformed kinds the generator injects, and the reason each must get.
pub const BAD_KINDS: [Reason; 5] = [
    Reason::NotJson,
    Reason::NotUtf8,
    Reason::MissingField,
    Reason::WrongType,
    Reason::BadTimestamp,
];

const SESSION_LEN: u64 = 6;

/// SplitMix64: a good 64-bit mix of a seed and a few words.
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

impl GeneratorSpec {
    /// Event time between consecutive events: the rate's spacing, or 100 ms when unlimited (so
    /// that a million events span more than a day).
    fn step_micros(&self) -> i64 {
        match self.rate {
            Some(r) if r > 0.0 => (1e6 / r).max(1.0) as i64,
            _ => 100_000,
        }
    }

    /// Which malformed kind event `seq` is, if any.
    pub fn bad_kind(&self, seq: u64) -> Option<Reason> {
        if self.bad_fraction <= 0.0 || unit(mix(self.seed, seq, 7)) >= self.bad_fraction {
            return None;
        }
        Some(BAD_KINDS[(mix(self.seed, seq, 8) % BAD_KINDS.len() as u64) as usize])
    }

    /// The number of event `seq`'s user (its `user_id` is `user_N`).
    pub fn user(&self, seq: u64) -> u64 {
        let users = 100 + seq / 25;
        mix(self.seed, seq / SESSION_LEN, 1) % users
    }

    /// Appends event `seq` as one JSON line (without the newline) to `out`; returns the malformed
    /// kind if it was made malformed on purpose.
    pub fn render(&self, seq: u64, out: &mut Vec<u8>) -> Option<Reason> {
        let seed = self.seed;
        let session = seq / SESSION_LEN;
        let step = seq % SESSION_LEN;
        let user = self.user(seq);
        let depth = match unit(mix(seed, session, 2)) {
            x if x < 0.45 => 1,
            x if x < 0.75 => 2,
            x if x < 0.90 => 3,
            _ => 4,
        };
        let login = mix(seed, session, 3) % 10 < 3;
        let event_type = match step {
            0 if login => "login",
            3 if depth >= 2 => "search",
            4 if depth >= 3 => "add_to_cart",
            5 if depth >= 4 => "purchase",
            _ => "page_view",
        };
        let (product, price) = PRODUCTS[(mix(seed, session, 4) % PRODUCTS.len() as u64) as usize];
        let country = COUNTRIES[(mix(seed, user, 5) % COUNTRIES.len() as u64) as usize];
        let source = match mix(seed, session, 6) % 20 {
            0 => None,
            n if n < 12 => Some("web"),
            _ => Some("mobile"),
        };
        let at = self.start_micros + seq as i64 * self.step_micros();
        let bad = self.bad_kind(seq);
        let start = out.len();

        let _ = write!(
            out,
            r#"{{"event_id":"evt_{seed:x}_{seq}","event_type":"{event_type}","#
        );
        match bad {
            Some(Reason::MissingField) => {}
            Some(Reason::WrongType) => {
                let _ = write!(out, r#""user_id":{user},"#);
            }
            _ => {
                let _ = write!(out, r#""user_id":"user_{user}","#);
            }
        }
        let timestamp = format_rfc3339(at);
        match bad {
            Some(Reason::BadTimestamp) => {
                out.extend_from_slice(br#""event_timestamp":"31/12/2024 25:61","#)
            }
            _ if seq % 7 == 3 => {
                // The same instant, stated in India's offset.
                let local = format_rfc3339(at + 330 * 60_000_000);
                let _ = write!(
                    out,
                    r#""event_timestamp":"{}+05:30","#,
                    &local[..local.len() - 1]
                );
            }
            _ => {
                let _ = write!(out, r#""event_timestamp":"{timestamp}","#);
            }
        }
        if event_type != "login" {
            let _ = write!(out, r#""product":"{product}","#);
        }
        if matches!(event_type, "add_to_cart" | "purchase") {
            let _ = write!(out, r#""price":{}.{:02},"#, price / 100, price % 100);
        }
        let _ = write!(out, r#""country":"{country}","#);
        if let Some(source) = source {
            let _ = write!(out, r#""source":"{source}","#);
        }
        out.extend_from_slice(br#""session_id":"s_"#);
        if bad == Some(Reason::NotUtf8) {
            out.extend_from_slice(b"\xff\xfe");
        }
        let _ = write!(out, r#"{seed:x}_{session}""#);
        if event_type == "page_view" {
            let _ = write!(out, r#","page":"/products/{}""#, product.replace(' ', "-"));
            if mix(seed, seq, 9).is_multiple_of(10) {
                let _ = write!(
                    out,
                    r#","referrer":"https://search.example/?q={}""#,
                    user % 97
                );
            }
        }
        out.push(b'}');
        if bad == Some(Reason::NotJson) {
            // Cut the line in half, at a character boundary so that it stays valid UTF-8.
            let mut cut = start + (out.len() - start) / 2;
            while out[cut] & 0xC0 == 0x80 {
                cut -= 1;
            }
            out.truncate(cut);
        }
        bad
    }
}

/// A stream of generated sequence numbers: `next`, `next + stride`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Stream {
    next: u64,
    stride: u64,
}

/// One worker's share of the generated sequence: at first the numbers `index`, `index + peers`,
/// ...; after a rescaled resume, the streams [`regroup`] gave it. It produces them in order.
pub struct GeneratorSource {
    spec: GeneratorSpec,
    streams: Vec<Stream>,
    started: Instant,
}

impl GeneratorSource {
    /// Worker `index` of `peers`.
    pub fn new(spec: GeneratorSpec, index: usize, peers: usize) -> Self {
        GeneratorSource {
            spec,
            streams: vec![Stream {
                next: index as u64,
                stride: peers.max(1) as u64,
            }],
            started: Instant::now(),
        }
    }

    /// Resumes the streams of `positions` (this worker's, as [`regroup`] gave them), paced as
    /// if the events before them had been produced on schedule.
    pub fn resume(mut self, positions: &[Position]) -> Self {
        self.streams = positions
            .iter()
            .filter_map(|p| match *p {
                Position::GeneratorStream { next, stride } => Some(Stream { next, stride }),
                _ => None,
            })
            .collect();
        let first = self.streams.iter().map(|s| s.next).min().unwrap_or(0);
        if let Some(rate) = self.spec.rate.filter(|r| *r > 0.0) {
            let ahead = Duration::from_secs_f64(first as f64 / rate);
            self.started = Instant::now().checked_sub(ahead).unwrap_or(self.started);
        }
        self
    }

    /// The stream whose next number comes first, if any is left before `end`.
    fn first(&mut self, end: u64) -> Option<&mut Stream> {
        self.streams
            .iter_mut()
            .filter(|s| s.next < end)
            .min_by_key(|s| s.next)
    }
}

/// The positions every worker of `peers` starts from, after a lake commit whose generator
/// positions are `positions` (one list per worker of the run that wrote it, in any number; an
/// earlier build's [`Position::Generator`] is the stream of its worker). Streams are halved
/// (`next`, `next + 2 stride`, ... and `next + stride`, ...) until there is one per worker,
/// then dealt out in turn.
pub fn regroup(positions: &[Vec<Position>], peers: usize) -> Vec<Vec<Position>> {
    let old = positions.len() as u64;
    let mut streams: Vec<Stream> = positions
        .iter()
        .flatten()
        .filter_map(|p| match *p {
            Position::GeneratorStream { next, stride } => Some(Stream { next, stride }),
            Position::Generator { seq } => Some(Stream {
                next: seq,
                stride: old,
            }),
            _ => None,
        })
        .collect();
    while !streams.is_empty() && streams.len() < peers {
        // Halve the widest share: the stream with the smallest stride.
        let (i, _) = streams
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| (s.stride, s.next))
            .expect("a stream");
        let s = streams[i];
        streams[i] = Stream {
            next: s.next,
            stride: s.stride * 2,
        };
        streams.push(Stream {
            next: s.next + s.stride,
            stride: s.stride * 2,
        });
    }
    streams.sort_unstable();
    let mut out = vec![Vec::new(); peers];
    for (i, s) in streams.into_iter().enumerate() {
        out[i % peers].push(Position::GeneratorStream {
            next: s.next,
            stride: s.stride,
        });
    }
    out
}

impl Source for GeneratorSource {
    fn poll(&mut self, chunk: &mut Chunk, max_records: usize) -> Result<Poll, SourceError> {
        let end = self.spec.count.unwrap_or(u64::MAX);
        let Some(next) = self.first(end).map(|s| s.next) else {
            return Ok(Poll::Exhausted);
        };
        // With a rate, event `seq` is due `seq / rate` seconds after the start.
        let due_limit = match self.spec.rate {
            Some(rate) if rate > 0.0 => {
                let elapsed = self.started.elapsed().as_secs_f64();
                let due = (elapsed * rate) as u64 + 1;
                if next >= due {
                    let wait = (next as f64 / rate - elapsed).max(0.0);
                    return Ok(Poll::Idle(Some(
                        Instant::now() + Duration::from_secs_f64(wait),
                    )));
                }
                due
            }
            _ => u64::MAX,
        };
        let mut produced = 0;
        while produced < max_records {
            let spec = &self.spec;
            let Some(stream) = self
                .streams
                .iter_mut()
                .filter(|s| s.next < end && s.next < due_limit)
                .min_by_key(|s| s.next)
            else {
                break;
            };
            chunk.begin_record(Position::Generator { seq: stream.next });
            spec.render(stream.next, chunk.buffer());
            chunk.end_record();
            stream.next += stream.stride;
            produced += 1;
        }
        Ok(Poll::Ready)
    }

    fn positions(&self, out: &mut Vec<Position>) {
        out.extend(self.streams.iter().map(|s| Position::GeneratorStream {
            next: s.next,
            stride: s.stride,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Decoder, Schema};

    /// The sequence numbers below `end` that `positions` (one list per worker) have left.
    fn left(positions: &[Vec<Position>], end: u64) -> Vec<u64> {
        let mut seqs: Vec<u64> = regroup(positions, 1)[0]
            .iter()
            .flat_map(|p| match *p {
                Position::GeneratorStream { next, stride } => (next..end).step_by(stride as usize),
                _ => panic!("{p:?}"),
            })
            .collect();
        seqs.sort_unstable();
        seqs
    }

    #[test]
    fn streams_regrouped_for_any_workers_leave_the_same_numbers_once() {
        // Two workers of an earlier build, at 10 and 15: 0, 2, ..., 8 and 1, 3, ..., 13 are done.
        let earlier = vec![
            vec![Position::Generator { seq: 10 }],
            vec![Position::Generator { seq: 15 }],
        ];
        let expected: Vec<u64> = (10..100).filter(|s| s % 2 == 0 || *s >= 15).collect();
        assert_eq!(left(&earlier, 100), expected);
        for peers in 1..6 {
            let regrouped = regroup(&earlier, peers);
            assert_eq!(regrouped.len(), peers);
            assert!(
                regrouped.iter().all(|w| !w.is_empty()),
                "{peers}: {regrouped:?}"
            );
            assert_eq!(left(&regrouped, 100), expected, "{peers} workers");
            // And again, to another number.
            assert_eq!(left(&regroup(&regrouped, 7 - peers), 100), expected);
        }
    }

    #[test]
    fn same_seed_same_bytes_and_bad_records_get_their_reason() {
        let spec = GeneratorSpec {
            bad_fraction: 0.2,
            ..GeneratorSpec::default()
        };
        let mut decoder = Decoder::new(Schema::ecommerce(), 1 << 20);
        let mut injected = 0;
        for seq in 0..5_000 {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let bad = spec.render(seq, &mut a);
            spec.render(seq, &mut b);
            assert_eq!(a, b);
            match (bad, decoder.decode(&a)) {
                (None, Ok(_)) => {}
                (Some(kind), Err(e)) => {
                    assert_eq!(e.reason, kind, "{}", String::from_utf8_lossy(&a));
                    injected += 1;
                }
                (bad, result) => panic!("seq {seq}: injected {bad:?}, decoded {result:?}"),
            }
        }
        assert!((800..1200).contains(&injected), "{injected}");
    }

    #[test]
    fn the_funnel_narrows_and_money_appears_only_where_it_belongs() {
        let spec = GeneratorSpec::default();
        let mut counts = std::collections::BTreeMap::new();
        for seq in 0..60_000 {
            let mut line = Vec::new();
            spec.render(seq, &mut line);
            let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
            let t = v["event_type"].as_str().unwrap().to_owned();
            assert_eq!(
                v.get("price").is_some(),
                t == "add_to_cart" || t == "purchase",
                "{v}"
            );
            assert_eq!(v.get("product").is_none(), t == "login");
            *counts.entry(t).or_insert(0) += 1;
        }
        assert!(
            counts["search"] > counts["add_to_cart"] && counts["add_to_cart"] > counts["purchase"],
            "{counts:?}"
        );
        assert!(counts["purchase"] > 500, "{counts:?}");
    }
}
