use super::*;

#[test]
fn a_url_gives_brokers_topics_options_and_properties() {
    let spec = KafkaSpec::parse(
        "kafka://a:9092,b:9093/events,clicks?start=latest&group=g&discovery=2s&sasl.mechanism=PLAIN&sasl.password=p%26q",
        &[("start".into(), "committed".into()), ("linger.ms".into(), "1".into())],
    )
    .unwrap();
    assert_eq!(spec.brokers, "a:9092,b:9093");
    assert_eq!(spec.topics, ["events", "clicks"]);
    assert_eq!(
        spec.start,
        StartAt::Latest,
        "the query wins over the config file"
    );
    assert_eq!(spec.group_or("pipe"), "g");
    assert_eq!(spec.discovery, Duration::from_secs(2));
    assert_eq!(
        spec.properties,
        [
            ("linger.ms".to_owned(), "1".to_owned()),
            ("sasl.mechanism".to_owned(), "PLAIN".to_owned()),
            ("sasl.password".to_owned(), "p&q".to_owned()),
        ]
    );
    assert_eq!(spec.display(), "kafka://a:9092,b:9093/events,clicks");
    let at = KafkaSpec::parse("kafka://a:1/t?start=2025-01-01T00:00:00Z", &[]).unwrap();
    assert_eq!(at.start, StartAt::Timestamp(1_735_689_600_000));
    assert_eq!(at.group_or("pipe"), "pipe");
}

#[test]
fn bad_urls_say_what_is_wrong() {
    for (url, says) in [
        ("kafka://a:1", "names no topic"),
        ("kafka://a:1/", "names no topic"),
        ("kafka:///t", "HOST:PORT"),
        ("kafka://a/t", "HOST:PORT"),
        ("kafka://a:1/t?start=soon", "kafka start `soon`"),
        ("kafka://a:1/t?group.id=x", "set by lambdaflow"),
        ("kafka://a:1/t?discovery=often", "not a duration"),
        ("kafka://a:1/t t", "not a Kafka topic name"),
    ] {
        let e = KafkaSpec::parse(url, &[]).unwrap_err();
        assert!(e.contains(says), "{url}: {e}");
    }
}

#[test]
fn every_partition_has_one_owner_and_new_partitions_move_none() {
    for peers in 1..6 {
        for topic in 0..3 {
            let before: Vec<usize> = (0..8).map(|p| owner(topic, p, peers)).collect();
            let after: Vec<usize> = (0..12).map(|p| owner(topic, p, peers)).collect();
            assert_eq!(before[..], after[..8]);
            assert!(after.iter().all(|&w| w < peers));
            // Round robin: the first `peers` partitions go to distinct workers.
            let mut first: Vec<usize> = after.iter().take(peers).copied().collect();
            first.sort();
            first.dedup();
            assert_eq!(first.len(), peers);
        }
    }
}

/// Neither librdkafka's mock cluster nor tansu can add partitions to a topic, so the source
/// is opened on a 4-partition topic and then made to forget partitions 2 and 3, as if they
/// were added after it started: the watch thread must find them in the metadata and the source
/// must read them from their beginning.
#[test]
fn partitions_found_later_are_read_from_their_beginning() {
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("t", 4, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    for p in 0..4 {
        for i in 0..5 {
            let payload = format!("{p}-{i}");
            producer
                .send(
                    BaseRecord::<(), str>::to("t")
                        .payload(&payload)
                        .partition(p),
                )
                .map_err(|(e, _)| e)
                .unwrap();
        }
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let spec = KafkaSpec::parse(&format!("kafka://{bootstrap}/t?discovery=100ms"), &[]).unwrap();
    let lag = LagBoard::default();
    let mut source = open(&spec, "p", 0, 1, 1 << 20, None, lag.clone()).unwrap();
    let mut later = TopicPartitionList::new();
    later.add_partition_range("t", 2, 3);
    source.consumer.incremental_unassign(&later).unwrap();
    drop(later);
    source.parts.retain(|&(_, p), _| p < 2);
    source.known = vec![2];
    source.watch.state.lock().unwrap().partitions = vec![2];

    let mut chunk = Chunk::default();
    let start = Instant::now();
    while chunk.len() < 20 && start.elapsed() < Duration::from_secs(20) {
        source.poll(&mut chunk, 100).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut seen: Vec<(u32, u64)> = chunk
        .iter()
        .map(|(_, position)| match position {
            Position::Kafka {
                partition, offset, ..
            } => (partition, offset),
            other => panic!("{other:?}"),
        })
        .collect();
    seen.sort();
    let want: Vec<(u32, u64)> = (0..4).flat_map(|p| (0..5).map(move |o| (p, o))).collect();
    assert_eq!(seen, want);
    let mut positions = Vec::new();
    source.positions(&mut positions);
    assert_eq!(positions.len(), 4);
    assert!(lag.lock().unwrap().contains_key("t/3"));
}

#[test]
fn commit_positions_regroup_by_owner_for_any_worker_count() {
    let at = |topic, partition, offset| Position::Kafka {
        topic,
        partition,
        offset,
    };
    // Written by 3 workers; read back by 2.
    let written = vec![
        vec![at(0, 0, 10), at(0, 3, 13)],
        vec![at(0, 1, 11), at(1, 2, 22)],
        vec![at(0, 2, 12)],
    ];
    let two = regroup(&written, 2);
    assert_eq!(two.len(), 2);
    for (w, positions) in two.iter().enumerate() {
        for p in positions {
            let Position::Kafka {
                topic, partition, ..
            } = *p
            else {
                panic!("{p:?}")
            };
            assert_eq!(owner(topic, partition, 2), w);
        }
    }
    assert_eq!(resume_offsets(&two), resume_offsets(&written));
    assert_eq!(resume_offsets(&written).len(), 5);
    assert_eq!(resume_offsets(&written)[&(1, 2)], 22);
}
