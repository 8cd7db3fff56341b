//! Writing to Kafka: the producer behind `lambdaflow publish` and the tests, and the
//! partitions' offsets read back from the brokers.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, TopicPartitionList};

use super::{KafkaSpec, Outage, kafka_error};
use crate::source::SourceError;

/// Counts delivery reports.
#[derive(Default)]
struct Deliveries {
    ok: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    first_error: Mutex<Option<String>>,
    outage: Mutex<Outage>,
}

impl ClientContext for Deliveries {
    fn error(&self, error: KafkaError, reason: &str) {
        self.outage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failed("publisher", &format!("{error} ({reason})"));
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.outage
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .recovered("publisher");
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Sends records to one topic, keyed, and checks every delivery report.
pub struct Publisher {
    producer: ThreadedProducer<Deliveries>,
    topic: String,
    sent: u64,
}

/// What a [`Publisher`] got done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Records handed to the producer.
    pub sent: u64,
    /// Records the brokers acknowledged.
    pub delivered: u64,
    /// Records that failed, and the first reason.
    pub failed: u64,
    /// The first delivery error.
    pub error: Option<String>,
    /// Partitions of the topic.
    pub partitions: usize,
}

impl Publisher {
    /// Connects to the brokers of `spec` and checks that its (single) topic exists.
    pub fn connect(spec: &KafkaSpec) -> Result<Self, SourceError> {
        let [topic] = spec.topics.as_slice() else {
            return Err(SourceError::Kafka(format!(
                "{}: give one topic to publish to",
                spec.display()
            )));
        };
        let mut config = ClientConfig::new();
        // Keys spread like the Java client's, so Kafka Streams tools agree on partitions.
        config
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("enable.idempotence", "true")
            // A mistyped topic is an error, not a new topic.
            .set("allow.auto.create.topics", "false");
        for (k, v) in spec.client_config("publisher").config_map() {
            config.set(k, v);
        }
        let producer: ThreadedProducer<Deliveries> = config
            .create_with_context(Deliveries::default())
            .map_err(|e| kafka_error(spec, "cannot be configured", e))?;
        let meta = producer
            .client()
            .fetch_metadata(Some(topic), spec.connect_timeout)
            .map_err(|e| {
                SourceError::Kafka(format!(
                    "no broker at {} answered within {}s: {e}",
                    spec.brokers,
                    spec.connect_timeout.as_secs()
                ))
            })?;
        match meta.topics().first() {
            Some(m) if m.error().is_none() && !m.partitions().is_empty() => {}
            _ => {
                return Err(SourceError::Kafka(format!(
                    "topic `{topic}` does not exist on {}",
                    spec.brokers
                )));
            }
        }
        Ok(Publisher {
            producer,
            topic: topic.clone(),
            sent: 0,
        })
    }

    /// Queues one record; waits while the producer's queue is full.
    pub fn send(&mut self, key: &[u8], payload: &[u8]) -> Result<(), SourceError> {
        let mut record = BaseRecord::to(&self.topic).key(key).payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.sent += 1;
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    return Err(SourceError::Kafka(format!(
                        "sending to `{}`: {e}",
                        self.topic
                    )));
                }
            }
        }
    }

    /// Waits up to `wait` for every delivery report and says how it went.
    pub fn finish(self, wait: Duration) -> Published {
        let flushed = self.producer.flush(wait);
        let ctx = self.producer.context();
        let partitions = self
            .producer
            .client()
            .fetch_metadata(Some(&self.topic), Duration::from_secs(5))
            .ok()
            .and_then(|m| m.topics().first().map(|t| t.partitions().len()))
            .unwrap_or(0);
        let delivered = ctx.ok.load(Ordering::Relaxed);
        let failed = ctx.failed.load(Ordering::Relaxed);
        let mut error = ctx
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Err(e) = flushed {
            error.get_or_insert_with(|| format!("not all deliveries were confirmed: {e}"));
        }
        Published {
            sent: self.sent,
            delivered,
            failed,
            error,
            partitions,
        }
    }
}

/// One partition as the brokers see it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PartitionOffsets {
    /// `TOPIC/PARTITION`.
    pub partition: String,
    /// The oldest offset kept.
    pub low: i64,
    /// The next offset to be written.
    pub high: i64,
    /// The consumer group's committed offset, if any.
    pub committed: Option<i64>,
}

/// The watermarks of every partition of the source's topics and the group's committed offsets.
pub fn partition_offsets(
    spec: &KafkaSpec,
    group: &str,
) -> Result<Vec<PartitionOffsets>, SourceError> {
    let consumer: BaseConsumer<DefaultConsumerContext> = spec
        .consumer_config("offsets", group)
        .create()
        .map_err(|e| kafka_error(spec, "cannot be configured", e))?;
    let timeout = spec.connect_timeout;
    let mut out = Vec::new();
    for topic in &spec.topics {
        let meta = consumer.fetch_metadata(Some(topic), timeout).map_err(|e| {
            SourceError::Kafka(format!("no broker at {} answered: {e}", spec.brokers))
        })?;
        let count = match meta.topics().first() {
            Some(m) if m.error().is_none() => m.partitions().len() as i32,
            _ => {
                return Err(SourceError::Kafka(format!(
                    "topic `{topic}` does not exist on {}",
                    spec.brokers
                )));
            }
        };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_range(topic, 0, count - 1);
        let committed = consumer
            .committed_offsets(tpl, timeout)
            .map_err(|e| kafka_error(spec, "committed offsets", e))?;
        for p in 0..count {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, timeout)
                .map_err(|e| kafka_error(spec, &format!("{topic}/{p} watermarks"), e))?;
            out.push(PartitionOffsets {
                partition: format!("{topic}/{p}"),
                low,
                high,
                committed: committed
                    .find_partition(topic, p)
                    .and_then(|e| e.offset().to_raw())
                    .filter(|&o| o >= 0),
            });
        }
        drop(committed);
    }
    Ok(out)
}
