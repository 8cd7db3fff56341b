//! The consumer group: the offsets of each lake commit committed to it, for lag tools, and the
//! lake's positions regrouped over a new number of workers.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, DefaultConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use super::{KafkaSpec, Outage, kafka_error, owner};
use crate::event::Position;
use crate::source::SourceError;

/// Commits the offsets of each lake commit to the consumer group, on a thread of its own so that
/// a slow or absent broker never holds the pipeline up; newer offsets replace older ones.
pub struct GroupCommitter {
    tx: Option<mpsc::Sender<Vec<Position>>>,
    thread: Option<JoinHandle<()>>,
    done: Arc<(Mutex<bool>, std::sync::Condvar)>,
}

impl GroupCommitter {
    /// Starts committing to `group`.
    pub fn start(spec: &KafkaSpec, group: &str) -> Result<Self, SourceError> {
        let consumer: BaseConsumer<DefaultConsumerContext> = spec
            .consumer_config("offsets", group)
            .create()
            .map_err(|e| kafka_error(spec, "cannot be configured", e))?;
        let topics = spec.topics.clone();
        let (tx, rx) = mpsc::channel::<Vec<Position>>();
        let done = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let finished = done.clone();
        let thread = std::thread::Builder::new()
            .name("kafka-offsets".into())
            .spawn(move || {
                let mut outage = Outage::default();
                let mut pending: Option<Vec<Position>> = None;
                loop {
                    let next = match &pending {
                        // A failed commit is retried unless newer offsets come first.
                        Some(_) => match rx.recv_timeout(Duration::from_secs(1)) {
                            Ok(p) => Some(p),
                            Err(mpsc::RecvTimeoutError::Timeout) => None,
                            Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        },
                        None => match rx.recv() {
                            Ok(p) => Some(p),
                            Err(_) => break,
                        },
                    };
                    if let Some(p) = next {
                        pending = Some(p);
                    }
                    while let Ok(p) = rx.try_recv() {
                        pending = Some(p);
                    }
                    if let Some(positions) = &pending {
                        match commit_offsets(&consumer, &topics, positions) {
                            Ok(()) => {
                                outage.recovered("offset commit");
                                pending = None;
                            }
                            Err(e) => outage.failed("offset commit", &e),
                        }
                    }
                }
                if let Some(positions) = &pending
                    && let Err(e) = commit_offsets(&consumer, &topics, positions)
                {
                    tracing::warn!(
                        "kafka: the last offsets were not committed to the consumer group ({e}); the lake has them"
                    );
                }
                let (lock, cv) = &*finished;
                *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
                cv.notify_all();
            })
            .map_err(|e| SourceError::Kafka(format!("starting the offset committer: {e}")))?;
        Ok(GroupCommitter {
            tx: Some(tx),
            thread: Some(thread),
            done,
        })
    }

    /// Offers the positions of a lake commit (every worker's).
    pub fn offer(&self, positions: &[Vec<Position>]) {
        let flat: Vec<Position> = positions
            .iter()
            .flatten()
            .filter(|p| matches!(p, Position::Kafka { .. }))
            .copied()
            .collect();
        if let Some(tx) = &self.tx {
            let _ = tx.send(flat);
        }
    }

    /// Commits what is pending, waiting at most `wait` for the broker.
    pub fn finish(mut self, wait: Duration) {
        self.tx = None;
        let (lock, cv) = &*self.done;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, timeout) = cv
            .wait_timeout_while(guard, wait, |done| !*done)
            .unwrap_or_else(|e| e.into_inner());
        drop(guard);
        if timeout.timed_out() {
            tracing::warn!(
                "kafka: consumer-group offsets not committed within {}s; the lake has them",
                wait.as_secs()
            );
            // The thread holds only its own consumer; it ends when its commit gives up.
            self.thread = None;
        } else if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn commit_offsets(
    consumer: &BaseConsumer<DefaultConsumerContext>,
    topics: &[String],
    positions: &[Position],
) -> Result<(), KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for position in positions {
        if let Position::Kafka {
            topic,
            partition,
            offset,
        } = *position
            && let Some(name) = topics.get(topic as usize)
        {
            tpl.add_partition_offset(name, partition as i32, Offset::Offset(offset as i64))?;
        }
    }
    if tpl.count() == 0 {
        return Ok(());
    }
    let result = consumer.commit(&tpl, CommitMode::Sync);
    drop(tpl);
    result
}

/// The next offsets of every partition in the positions of a lake commit (all workers').
pub fn resume_offsets(positions: &[Vec<Position>]) -> BTreeMap<(u32, u32), u64> {
    positions
        .iter()
        .flatten()
        .filter_map(|p| match *p {
            Position::Kafka {
                topic,
                partition,
                offset,
            } => Some(((topic, partition), offset)),
            _ => None,
        })
        .collect()
}

/// The positions of a lake commit regrouped by the worker that owns each partition now.
pub fn regroup(positions: &[Vec<Position>], peers: usize) -> Vec<Vec<Position>> {
    let mut out = vec![Vec::new(); peers];
    for (&(topic, partition), &offset) in &resume_offsets(positions) {
        out[owner(topic, partition, peers)].push(Position::Kafka {
            topic,
            partition,
            offset,
        });
    }
    out
}
