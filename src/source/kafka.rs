//! Kafka: partitions assigned explicitly over all workers, offsets kept by the lake.
//!
//! Every partition of every topic belongs to exactly one worker, by a fixed rule
//! ([`owner`]), so there is no consumer-group rebalancing inside a running dataflow: each worker
//! `assign`s its own partitions to its own consumer. A record's [`Position`] is its partition and
//! offset; a worker's source position is the next offset of each of its partitions, and the
//! lake commit that covers an epoch stores them. On restart each partition resumes exactly
//! there, whatever the number of workers. After each lake commit the offsets are also committed
//! to the consumer group ([`GroupCommitter`]) for lag tools; the lake stays the source of truth.
//!
//! A background thread per worker asks the brokers for high watermarks (lag) and,
//! when the source is unbounded, for new partitions, which are then read from their beginning.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::{CHUNK_BYTES, Chunk, LagBoard, PartitionLag, Poll, Source, SourceError};
use crate::event::Position;

mod group;
mod publish;

pub use group::{GroupCommitter, regroup, resume_offsets};
pub use publish::{PartitionOffsets, Published, Publisher, partition_offsets};

/// Where a pipeline with no lake commit yet starts reading each partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest message still kept.
    Earliest,
    /// Only messages produced after the start.
    Latest,
    /// The consumer group's committed offsets (the earliest where there are none).
    Committed,
    /// The first message at or after this time, in milliseconds since the Unix epoch.
    Timestamp(i64),
}

/// A Kafka source: `kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC][?KEY=VALUE&...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaSpec {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The topics, in the order given (a [`Position::Kafka`] names its topic by index).
    pub topics: Vec<String>,
    /// Where to start without a lake commit.
    pub start: StartAt,
    /// The consumer group that offsets are committed to (for lag tools only).
    pub group: Option<String>,
    /// librdkafka properties passed through (`security.protocol`, `sasl.*`, `ssl.*`, ...).
    pub properties: Vec<(String, String)>,
    /// Read up to the end offsets seen at the start, then stop (`run --until-exhausted`).
    pub until_end: bool,
    /// How often to look for new partitions.
    pub discovery: Duration,
    /// How long to wait for a broker at the start before giving up.
    pub connect_timeout: Duration,
}

/// Properties that lambdaflow sets itself: offsets are its business, not the client's.
const RESERVED: [&str; 5] = [
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
];

impl KafkaSpec {
    /// Parses a `kafka://` source. Query keys `start` (earliest, latest, committed or an RFC 3339
    /// time), `group`, `discovery` and `connect_timeout` (durations) are lambdaflow's; any other
    /// key is a librdkafka property. `defaults` (from the config file) are set before the query.
    pub fn parse(text: &str, defaults: &[(String, String)]) -> Result<KafkaSpec, String> {
        let rest = text
            .strip_prefix("kafka://")
            .ok_or_else(|| format!("`{text}` does not start with kafka://"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (brokers, topics) = rest
            .split_once('/')
            .ok_or_else(|| format!("`{text}` names no topic (kafka://HOST:PORT/TOPIC)"))?;
        if brokers.is_empty() || brokers.split(',').any(|b| !b.contains(':')) {
            return Err(format!(
                "`{text}`: brokers must be HOST:PORT[,HOST:PORT...]"
            ));
        }
        let topics: Vec<String> = topics
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        if topics.is_empty() {
            return Err(format!("`{text}` names no topic (kafka://HOST:PORT/TOPIC)"));
        }
        if let Some(bad) = topics.iter().find(|t| {
            !t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        }) {
            return Err(format!("`{bad}` is not a Kafka topic name"));
        }
        let mut spec = KafkaSpec {
            brokers: brokers.to_owned(),
            topics,
            start: StartAt::Earliest,
            group: None,
            properties: Vec::new(),
            until_end: false,
            discovery: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(30),
        };
        for (key, value) in defaults {
            spec.set(key, value)?;
        }
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            spec.set(&key, &value)?;
        }
        Ok(spec)
    }

    /// Sets one option: lambdaflow's own keys, or a librdkafka property.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let duration = |v: &str| {
            humantime::parse_duration(v)
                .map_err(|e| format!("kafka `{key}`: `{v}` is not a duration such as 10s ({e})"))
        };
        match key {
            "start" => self.start = parse_start(value)?,
            "group" => self.group = Some(value.to_owned()),
            "discovery" => self.discovery = duration(value)?,
            "connect_timeout" => self.connect_timeout = duration(value)?,
            _ if RESERVED.contains(&key) => {
                return Err(format!(
                    "kafka property `{key}` is set by lambdaflow (use `group=` for the group)"
                ));
            }
            _ if key.is_empty() || !key.chars().all(|c| c.is_ascii_graphic()) => {
                return Err(format!("`{key}` is not a librdkafka property name"));
            }
            _ => {
                self.properties.retain(|(k, _)| k != key);
                self.properties.push((key.to_owned(), value.to_owned()));
            }
        }
        Ok(())
    }

    /// The consumer group: the one given, or the pipeline id.
    pub fn group_or(&self, pipeline: &str) -> String {
        self.group.clone().unwrap_or_else(|| pipeline.to_owned())
    }

    /// `kafka://BROKERS/TOPICS`, without properties (which may hold secrets).
    pub fn display(&self) -> String {
        format!("kafka://{}/{}", self.brokers, self.topics.join(","))
    }

    fn client_config(&self, role: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", format!("lambdaflow-{role}"));
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }

    fn consumer_config(&self, role: &str, group: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        // Defaults a user may override: bounded fetch buffers (backpressure, not memory growth).
        config
            .set("auto.offset.reset", "earliest")
            .set("queued.max.messages.kbytes", "16384");
        for (k, v) in self.client_config(role).config_map() {
            config.set(k, v);
        }
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "enable.partition.eof",
                if self.until_end { "true" } else { "false" },
            );
        config
    }
}

fn parse_start(value: &str) -> Result<StartAt, String> {
    Ok(match value {
        "earliest" | "beginning" => StartAt::Earliest,
        "latest" | "end" => StartAt::Latest,
        "committed" | "group" => StartAt::Committed,
        _ => {
            let at = chrono::DateTime::parse_from_rfc3339(value).map_err(|_| {
                format!(
                    "kafka start `{value}` is not earliest, latest, committed or an RFC 3339 time"
                )
            })?;
            StartAt::Timestamp(at.timestamp_millis())
        }
    })
}

/// The worker that reads partition `partition` of topic number `topic`: partitions go round
/// robin, each topic starting one worker further, so a topic's new partitions never move others.
pub fn owner(topic: u32, partition: u32, peers: usize) -> usize {
    (topic as usize + partition as usize) % peers.max(1)
}

fn kafka_error(spec: &KafkaSpec, what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Kafka(format!("{} {what}: {e}", spec.display()))
}

/// Errors after which waiting cannot help.
fn is_fatal(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    match e {
        KafkaError::MessageConsumptionFatal(_) => true,
        KafkaError::MessageConsumption(code) => matches!(
            code,
            C::Authentication
                | C::SaslAuthenticationFailed
                | C::TopicAuthorizationFailed
                | C::GroupAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::InvalidArgument
        ),
        _ => false,
    }
}

/// Says once that the brokers went away, again every 30 s while they stay away, and once that
/// they are back.
#[derive(Debug, Default)]
struct Outage {
    since: Option<Instant>,
    last_said: Option<Instant>,
}

impl Outage {
    fn failed(&mut self, who: &str, e: &dyn std::fmt::Display) {
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        if self
            .last_said
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(30))
        {
            self.last_said = Some(now);
            tracing::warn!(
                "kafka: {who}: {e}; waiting for the broker (for {}s so far), nothing is lost",
                since.elapsed().as_secs()
            );
        }
    }

    fn recovered(&mut self, who: &str) {
        if let Some(since) = self.since.take() {
            self.last_said = None;
            tracing::warn!(
                "kafka: {who}: the broker is back after {:.1}s, reading again",
                since.elapsed().as_secs_f64()
            );
        }
    }
}

#[derive(Debug)]
struct Part {
    /// `TOPIC/PARTITION`, as lag is reported.
    label: String,
    /// The next offset to read.
    next: i64,
    /// Bounded reading stops here.
    end: Option<i64>,
    done: bool,
}

/// What the watch thread learnt: partition counts per topic and high watermarks.
#[derive(Debug, Default)]
struct Watched {
    partitions: Vec<u32>,
    highs: BTreeMap<(u32, i32), i64>,
    fresh: bool,
}

/// A background thread asking the brokers for partitions and watermarks.
struct Watch {
    state: Arc<Mutex<Watched>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    fn start(spec: Arc<KafkaSpec>, index: usize, peers: usize, partitions: Vec<u32>) -> Self {
        let state = Arc::new(Mutex::new(Watched {
            partitions,
            ..Watched::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("kafka-watch-{index}"))
            .spawn(move || watch(spec, index, peers, st, sp))
            .ok();
        Watch {
            state,
            stop,
            thread,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch(
    spec: Arc<KafkaSpec>,
    index: usize,
    peers: usize,
    state: Arc<Mutex<Watched>>,
    stop: Arc<AtomicBool>,
) {
    let Ok(client) = spec
        .client_config(&format!("watch-{index}"))
        .create::<BaseConsumer<DefaultConsumerContext>>()
    else {
        return;
    };
    let timeout = Duration::from_secs(5);
    let mut last_discovery = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let mut partitions = state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .partitions
            .clone();
        if !spec.until_end && last_discovery.elapsed() >= spec.discovery {
            last_discovery = Instant::now();
            for (t, topic) in spec.topics.iter().enumerate() {
                if let Ok(meta) = client.fetch_metadata(Some(topic), timeout)
                    && let Some(m) = meta.topics().first()
                    && m.error().is_none()
                {
                    partitions[t] = partitions[t].max(m.partitions().len() as u32);
                }
            }
        }
        let mut highs = BTreeMap::new();
        for (t, topic) in spec.topics.iter().enumerate() {
            for p in (0..partitions[t]).filter(|&p| owner(t as u32, p, peers) == index) {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok((_, high)) = client.fetch_watermarks(topic, p as i32, timeout) {
                    highs.insert((t as u32, p as i32), high);
                }
            }
        }
        {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            s.partitions = partitions;
            s.highs = highs;
            s.fresh = true;
        }
        let tick = Instant::now();
        while tick.elapsed() < Duration::from_secs(1) && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One worker's share of a Kafka source: its own consumer on its own partitions.
pub struct KafkaSource {
    spec: Arc<KafkaSpec>,
    consumer: BaseConsumer<DefaultConsumerContext>,
    index: usize,
    peers: usize,
    max: usize,
    parts: BTreeMap<(u32, i32), Part>,
    known: Vec<u32>,
    watch: Watch,
    lag: LagBoard,
    outage: Outage,
    checked: Instant,
    lag_logged: Instant,
}

/// How many partitions each topic of `spec` has; an error naming the broker or the topic when
/// none answers or the topic does not exist.
fn partition_counts(
    consumer: &BaseConsumer<DefaultConsumerContext>,
    spec: &KafkaSpec,
) -> Result<Vec<u32>, SourceError> {
    let timeout = spec.connect_timeout;
    spec.topics
        .iter()
        .map(|topic| {
            let meta = consumer.fetch_metadata(Some(topic), timeout).map_err(|e| {
                SourceError::Kafka(format!(
                    "no broker at {} answered within {}s: {e}",
                    spec.brokers,
                    timeout.as_secs()
                ))
            })?;
            match meta.topics().first() {
                Some(m) if m.error().is_none() && !m.partitions().is_empty() => {
                    Ok(m.partitions().len() as u32)
                }
                _ => Err(SourceError::Kafka(format!(
                    "topic `{topic}` does not exist on {}",
                    spec.brokers
                ))),
            }
        })
        .collect()
}

/// Opens worker `index` of `peers`'s share. `resume` holds the next offset of every partition
/// the last lake commit recorded (of all workers); partitions it lacks are new and read from the
/// beginning. Without a commit, partitions start at `spec.start`.
pub fn open(
    spec: &KafkaSpec,
    pipeline: &str,
    index: usize,
    peers: usize,
    max_record_bytes: usize,
    resume: Option<&BTreeMap<(u32, u32), u64>>,
    lag: LagBoard,
) -> Result<KafkaSource, SourceError> {
    let spec = Arc::new(spec.clone());
    let group = spec.group_or(pipeline);
    let consumer: BaseConsumer<DefaultConsumerContext> = spec
        .consumer_config(&format!("w{index}"), &group)
        .create()
        .map_err(|e| kafka_error(&spec, "cannot be configured", e))?;
    let timeout = spec.connect_timeout;

    let known = partition_counts(&consumer, &spec)?;

    let mut parts = BTreeMap::new();
    for (t, topic) in spec.topics.iter().enumerate() {
        for p in (0..known[t]).filter(|&p| owner(t as u32, p, peers) == index) {
            let (t, p) = (t as u32, p as i32);
            let (low, high) = consumer
                .fetch_watermarks(topic, p, timeout)
                .map_err(|e| kafka_error(&spec, &format!("{topic}/{p} watermarks"), e))?;
            let next = match resume {
                Some(r) => {
                    let next = r.get(&(t, p as u32)).map_or(0, |&o| o as i64);
                    if next < low {
                        tracing::warn!(
                            "kafka: {topic}/{p}: offsets {next} to {} were deleted by the broker's retention before they were read; reading on from {low}",
                            low - 1
                        );
                    }
                    next.max(low)
                }
                None => start_offset(&consumer, &spec, topic, p, (low, high))?,
            };
            let end = spec.until_end.then_some(high);
            parts.insert(
                (t, p),
                Part {
                    label: format!("{topic}/{p}"),
                    next,
                    end,
                    done: end.is_some_and(|e| next >= e),
                },
            );
        }
    }
    let mut tpl = TopicPartitionList::new();
    for (&(t, p), part) in parts.iter().filter(|(_, part)| !part.done) {
        tpl.add_partition_offset(&spec.topics[t as usize], p, Offset::Offset(part.next))
            .map_err(|e| kafka_error(&spec, "assignment", e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| kafka_error(&spec, "assignment", e))?;
    drop(tpl);
    tracing::debug!(
        worker = index,
        partitions = parts.len(),
        "kafka: reading {}",
        spec.display()
    );
    let watch = Watch::start(spec.clone(), index, peers, known.clone());
    Ok(KafkaSource {
        spec,
        consumer,
        index,
        peers,
        max: max_record_bytes,
        parts,
        known,
        watch,
        lag,
        outage: Outage::default(),
        checked: Instant::now(),
        lag_logged: Instant::now(),
    })
}

impl KafkaSource {
    /// Takes what the watch thread found: new partitions to read, and lag.
    fn take_watch(&mut self) -> Result<(), SourceError> {
        let (partitions, highs) = {
            let mut w = self.watch.state.lock().unwrap_or_else(|e| e.into_inner());
            if !w.fresh {
                return Ok(());
            }
            w.fresh = false;
            (w.partitions.clone(), std::mem::take(&mut w.highs))
        };
        let mut added = TopicPartitionList::new();
        for (t, &count) in partitions.iter().enumerate() {
            let t32 = t as u32;
            if count <= self.known[t] {
                continue;
            }
            tracing::info!(
                "kafka: topic `{}` now has {count} partitions (had {})",
                self.spec.topics[t],
                self.known[t]
            );
            for p in self.known[t]..count {
                if owner(t32, p, self.peers) == self.index {
                    self.parts.insert(
                        (t32, p as i32),
                        Part {
                            label: format!("{}/{p}", self.spec.topics[t]),
                            next: 0,
                            end: None,
                            done: false,
                        },
                    );
                    added
                        .add_partition_offset(&self.spec.topics[t], p as i32, Offset::Beginning)
                        .map_err(|e| kafka_error(&self.spec, "assignment", e))?;
                }
            }
            self.known[t] = count;
        }
        if added.count() > 0 {
            self.consumer
                .incremental_assign(&added)
                .map_err(|e| kafka_error(&self.spec, "assignment", e))?;
        }
        drop(added);
        let mut board = self.lag.lock().unwrap_or_else(|e| e.into_inner());
        let mut behind = Vec::new();
        for (&(t, p), part) in &self.parts {
            if let Some(&high) = highs.get(&(t, p)) {
                let lag = PartitionLag {
                    next: part.next,
                    high,
                };
                behind.push(format!("{} {}", part.label, lag.lag()));
                board.insert(part.label.clone(), lag);
            }
        }
        if self.lag_logged.elapsed() >= Duration::from_secs(10) && !behind.is_empty() {
            self.lag_logged = Instant::now();
            tracing::info!(worker = self.index, "kafka lag: {}", behind.join(", "));
        }
        Ok(())
    }
}

impl Source for KafkaSource {
    fn poll(&mut self, chunk: &mut Chunk, max_records: usize) -> Result<Poll, SourceError> {
        if self.checked.elapsed() >= Duration::from_millis(200) {
            self.checked = Instant::now();
            self.take_watch()?;
        }
        let who = format!("worker {}", self.index);
        let mut n = 0;
        while n < max_records && chunk.byte_len() < CHUNK_BYTES {
            match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(m)) => {
                    self.outage.recovered(&who);
                    let Some(t) = self.spec.topics.iter().position(|t| t == m.topic()) else {
                        continue;
                    };
                    let (t, p, offset) = (t as u32, m.partition(), m.offset());
                    let Some(part) = self.parts.get_mut(&(t, p)) else {
                        continue;
                    };
                    if part.done || offset < part.next {
                        continue;
                    }
                    if part.end.is_some_and(|end| offset >= end) {
                        finish(&self.consumer, &self.spec, t, p, part);
                        continue;
                    }
                    let payload = m.payload().unwrap_or_default();
                    chunk.push(
                        &payload[..payload.len().min(self.max + 1)],
                        Position::Kafka {
                            topic: t,
                            partition: p as u32,
                            offset: offset as u64,
                        },
                    );
                    part.next = offset + 1;
                    if part.end.is_some_and(|end| part.next >= end) {
                        finish(&self.consumer, &self.spec, t, p, part);
                    }
                    n += 1;
                }
                Some(Err(KafkaError::PartitionEOF(p))) => self.reached_end(p),
                Some(Err(e)) if is_fatal(&e) => {
                    return Err(kafka_error(&self.spec, "cannot be read", e));
                }
                Some(Err(e)) => self.outage.failed(&who, &e),
            }
        }
        if n > 0 {
            Ok(Poll::Ready)
        } else if self.spec.until_end && self.parts.values().all(|p| p.done) {
            Ok(Poll::Exhausted)
        } else {
            Ok(Poll::Idle(Some(Instant::now() + Duration::from_millis(1))))
        }
    }

    fn positions(&self, out: &mut Vec<Position>) {
        out.extend(self.parts.iter().map(|(&(t, p), part)| Position::Kafka {
            topic: t,
            partition: p as u32,
            offset: part.next.max(0) as u64,
        }));
        // Called at every epoch: the lag board follows reading between watermark updates.
        if let Ok(mut board) = self.lag.try_lock() {
            for part in self.parts.values() {
                if let Some(lag) = board.get_mut(&part.label) {
                    lag.next = part.next;
                }
            }
        }
    }
}

impl KafkaSource {
    /// A partition (of some topic) reached its current end. Bounded reading is done with it once
    /// the consumer's position has reached the end seen at the start: transaction markers take
    /// offsets that no message has.
    fn reached_end(&mut self, partition: i32) {
        if !self.spec.until_end {
            return;
        }
        let Ok(position) = self.consumer.position() else {
            return;
        };
        let mut finished = Vec::new();
        for (&(t, p), part) in self
            .parts
            .iter()
            .filter(|((_, p), part)| *p == partition && !part.done)
        {
            let at = position
                .find_partition(&self.spec.topics[t as usize], p)
                .and_then(|e| e.offset().to_raw());
            if let (Some(at), Some(end)) = (at, part.end)
                && at >= end
            {
                finished.push((t, p));
            }
        }
        drop(position);
        for (t, p) in finished {
            if let Some(part) = self.parts.get_mut(&(t, p)) {
                finish(&self.consumer, &self.spec, t, p, part);
            }
        }
    }
}

/// Where partition `p` of `topic` (with watermarks `low` and `high`) starts for a pipeline with
/// no lake commit: `spec.start`.
fn start_offset(
    consumer: &BaseConsumer<DefaultConsumerContext>,
    spec: &KafkaSpec,
    topic: &str,
    p: i32,
    (low, high): (i64, i64),
) -> Result<i64, SourceError> {
    let timeout = spec.connect_timeout;
    // The offset found for the partition in a list the client filled in, if it is one.
    let found = |list: TopicPartitionList| {
        let at = list
            .find_partition(topic, p)
            .and_then(|e| e.offset().to_raw())
            .filter(|&o| o >= 0);
        // Dropped before the consumer is: a live list makes the consumer's drop hang.
        drop(list);
        at
    };
    let mut tpl = TopicPartitionList::new();
    Ok(match spec.start {
        StartAt::Earliest => low,
        StartAt::Latest => high,
        StartAt::Committed => {
            tpl.add_partition(topic, p);
            let committed = consumer
                .committed_offsets(tpl, timeout)
                .map_err(|e| kafka_error(spec, "committed offsets", e))?;
            match found(committed) {
                Some(o) => o,
                None => low,
            }
        }
        StartAt::Timestamp(ms) => {
            tpl.add_partition_offset(topic, p, Offset::Offset(ms))
                .map_err(|e| kafka_error(spec, "start time", e))?;
            let offsets = consumer
                .offsets_for_times(tpl, timeout)
                .map_err(|e| kafka_error(spec, "offsets for the start time", e))?;
            match found(offsets) {
                Some(o) => o,
                None => high,
            }
        }
    })
}

/// Bounded reading is done with a partition: its position is its end, and it is paused.
fn finish(
    consumer: &BaseConsumer<DefaultConsumerContext>,
    spec: &KafkaSpec,
    t: u32,
    p: i32,
    part: &mut Part,
) {
    part.done = true;
    if let Some(end) = part.end {
        part.next = part.next.max(end);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&spec.topics[t as usize], p);
    let _ = consumer.pause(&tpl);
}

#[cfg(test)]
mod tests;
