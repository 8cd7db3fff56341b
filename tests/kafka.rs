//! Kafka in and out, against librdkafka's in-process mock cluster (a real Kafka protocol peer on
//! a local port): `generate --to` publishes, `run` reads with several workers into the lake
//! exactly once, malformed and oversized messages become dead letters with their partition and
//! offset, offsets reach the consumer group, and a broker that goes away loses nothing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

#[path = "support/run.rs"]
mod run;

use run::{Dirs, get, json, lambdaflow, ok, ok_bytes, two_free_ports, two_process_run};

fn info(data: &Path) -> serde_json::Value {
    let data = data.display().to_string();
    serde_json::from_str(&ok(&["lake", "info", "--json", "--data-dir", &data])).unwrap()
}

fn sum(views: &serde_json::Value, view: &str) -> i64 {
    views["views"][view]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"]["count"].as_i64().unwrap())
        .sum()
}

/// Appends `count` generated events (seed `seed`) to `file` and publishes the same to `topic`.
fn publish(bootstrap: &str, topic: &str, file: &Path, count: u64, seed: u64) {
    let url = format!("kafka://{bootstrap}/{topic}");
    let (count, seed) = (count.to_string(), seed.to_string());
    let common = ["--count", &count, "--seed", &seed, "--bad-fraction", "0.01"];
    let out = ok(&[&["generate", "--to", &url][..], &common[..]].concat());
    assert!(
        out.contains(&format!("{count} delivered, 0 failed")),
        "{out}"
    );
    append(file, &ok_bytes(&[&["generate"][..], &common[..]].concat()));
}

fn append(file: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// Sends raw messages to one partition; returns the offset of each.
fn send_raw(bootstrap: &str, topic: &str, partition: i32, payloads: &[&[u8]]) -> Vec<i64> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let (_, high) = producer
        .client()
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .unwrap();
    for payload in payloads {
        producer
            .send(
                BaseRecord::<(), [u8]>::to(topic)
                    .payload(payload)
                    .partition(partition),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    (0..payloads.len() as i64).map(|i| high + i).collect()
}

/// For every partition of `events`: its end, the group's committed offset and the lake's offset
/// (`lake info`) are one and the same.
fn offsets_agree(bootstrap: &str, data: &Path, partitions: i32) {
    let consumer = group_member(bootstrap);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_range("events", 0, partitions - 1);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    let lake = info(data);
    for p in 0..partitions {
        let (_, high) = consumer
            .fetch_watermarks("events", p, Duration::from_secs(10))
            .unwrap();
        let group = match committed.find_partition("events", p).unwrap().offset() {
            Offset::Offset(o) => o,
            other => panic!("partition {p} has no committed offset: {other:?}"),
        };
        let lake_at = lake["kafka_offsets"][format!("events/{p}")]
            .as_i64()
            .unwrap();
        assert_eq!((group, lake_at), (high, high), "partition {p}");
    }
    drop(committed);
}

/// A consumer of the group `lambdaflow` commits to by default (it joins nothing: it only reads
/// and commits the group's offsets).
fn group_member(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "lambdaflow")
        .create()
        .unwrap()
}

/// A mock cluster with a topic `events` of `partitions` partitions, and its bootstrap address.
fn mock(partitions: i32) -> (MockCluster<'static, DefaultProducerContext>, String) {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("events", partitions, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    (mock, bootstrap)
}

/// `(reason, _source, _offset)` of every committed dead letter.
fn dead_letters(data: &Path) -> Vec<(String, String, i64)> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    let mut out = Vec::new();
    let dir = data.join("dead_letters");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let file = std::fs::File::open(&path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let col = |name: &str| batch.column_by_name(name).unwrap().clone();
            let (reason, source, offset) = (col("reason"), col("_source"), col("_offset"));
            let (reason, source) = (reason.as_string::<i32>(), source.as_string::<i32>());
            let offset = offset.as_primitive::<Int64Type>();
            for row in 0..batch.num_rows() {
                out.push((
                    reason.value(row).to_owned(),
                    source.value(row).to_owned(),
                    offset.value(row),
                ));
            }
        }
    }
    out
}

/// The views of the same records read from a file: what the Kafka run must equal.
fn file_views(d: &Dirs, file: &Path) -> serde_json::Value {
    let out = d.path("file-views.json");
    ok(&[
        "run",
        "-q",
        "--until-exhausted",
        "--no-lake",
        "--max-record-bytes",
        "2048",
        "--source",
        &format!("file:{}", file.display()),
        "--views-out",
        &out.display().to_string(),
    ]);
    json(&out)
}

#[test]
fn every_message_lands_in_the_lake_once_whatever_the_workers() {
    let (_mock, bootstrap) = mock(5);
    let d = Dirs::new();
    let file = d.path("same.jsonl");
    publish(&bootstrap, "events", &file, 3000, 9);
    // An oversized message and one that is not JSON, on partition 2.
    let big = format!("{{\"event_id\":\"{}\"}}", "x".repeat(5000));
    let bad: &[u8] = b"this is not json";
    let offsets = send_raw(&bootstrap, "events", 2, &[big.as_bytes(), bad]);
    append(&file, format!("{big}\n").as_bytes());
    append(&file, bad);
    append(&file, b"\n");

    let data = d.path("data");
    let views_out = d.path("kafka-views.json");
    let source = format!("kafka://{bootstrap}/events");
    let run = |workers: &str| {
        ok(&[
            "run",
            "-q",
            "--until-exhausted",
            "--workers",
            workers,
            "--epoch-records",
            "300",
            "--commit-epochs",
            "2",
            "--max-record-bytes",
            "2048",
            "--source",
            &source,
            "--data-dir",
            &data.display().to_string(),
            "--views-out",
            &views_out.display().to_string(),
        ])
    };
    run("3");
    let kafka = json(&views_out);
    assert_eq!(kafka["views"], file_views(&d, &file)["views"]);
    let (events, dead) = (
        sum(&kafka, "events_by_type"),
        sum(&kafka, "dead_letters_by_reason"),
    );
    assert_eq!(events + dead, 3002);
    let lake = info(&data);
    assert_eq!(lake["events"]["rows"].as_i64().unwrap(), events);
    assert_eq!(lake["dead_letters"]["rows"].as_i64().unwrap(), dead);

    // Every partition's offset in the lake is its end, and the group has the same.
    offsets_agree(&bootstrap, &data, 5);

    // The two messages on partition 2 are dead letters that say where they were.
    let dead_rows = dead_letters(&data);
    for (reason, offset) in [("too_large", offsets[0]), ("not_json", offsets[1])] {
        assert!(
            dead_rows.contains(&(reason.to_owned(), "kafka:events/2".to_owned(), offset)),
            "{reason} at events/2 offset {offset} not in {dead_rows:?}"
        );
    }

    // More messages, another worker count: the lake continues exactly where it stood.
    publish(&bootstrap, "events", &file, 1000, 10);
    run("2");
    let kafka = json(&views_out);
    assert_eq!(kafka["views"], file_views(&d, &file)["views"]);
    let lake = info(&data);
    assert_eq!(
        lake["events"]["rows"].as_i64().unwrap() + lake["dead_letters"]["rows"].as_i64().unwrap(),
        4002
    );
    offsets_agree(&bootstrap, &data, 5);

    // A run killed after a lake commit and before the group's: the group is behind the lake.
    // The next run reads nothing new, commits nothing to the lake, and still brings the group to
    // the lake's offsets.
    rewind_group(&bootstrap, 5);
    run("1");
    assert_eq!(json(&views_out)["views"], kafka["views"]);
    offsets_agree(&bootstrap, &data, 5);
}

#[test]
fn a_cluster_reads_a_topic_once_and_one_process_continues_its_lake() {
    let (_mock, bootstrap) = mock(5);
    let d = Dirs::new();
    let file = d.path("same.jsonl");
    publish(&bootstrap, "events", &file, 3000, 11);
    let data = d.path("data").display().to_string();
    let views_out = d.path("kafka-views.json").display().to_string();
    let source = format!("kafka://{bootstrap}/events");
    let common = [
        "-q",
        "--until-exhausted",
        "--epoch-records",
        "300",
        "--commit-epochs",
        "2",
        "--source",
        &source,
        "--data-dir",
        &data,
        "--views-out",
        &views_out,
    ];
    // Two processes of one worker each share the five partitions.
    ok(&[
        &["cluster", "--processes", "2", "--", "run"][..],
        &common[..],
    ]
    .concat());
    assert_eq!(json(&views_out)["views"], file_views(&d, &file)["views"]);
    offsets_agree(&bootstrap, data.as_ref(), 5);
    // One process with two workers continues the cluster's lake where it stood.
    publish(&bootstrap, "events", &file, 1000, 12);
    ok(&[&["run", "--workers", "2"][..], &common[..]].concat());
    assert_eq!(json(&views_out)["views"], file_views(&d, &file)["views"]);
    let lake = info(data.as_ref());
    assert_eq!(
        lake["events"]["rows"].as_i64().unwrap() + lake["dead_letters"]["rows"].as_i64().unwrap(),
        4000
    );
    offsets_agree(&bootstrap, data.as_ref(), 5);
    // Two processes of two workers each, into a lake of their own, read the whole topic.
    let data2 = d.path("data-2x2").display().to_string();
    let views2 = d.path("views-2x2.json").display().to_string();
    let two_by_two = [
        &common[..8],
        &["--data-dir", &data2, "--views-out", &views2][..],
    ]
    .concat();
    assert_eq!(common[8], "--data-dir");
    ok(&[
        &["cluster", "--processes", "2", "--workers", "2", "--", "run"][..],
        &two_by_two[..],
    ]
    .concat());
    assert_eq!(json(&views2)["views"], json(&views_out)["views"]);
}

#[test]
fn a_clusters_first_process_serves_every_partitions_lag() {
    let (_mock, bootstrap) = mock(5);
    let d = Dirs::new();
    publish(&bootstrap, "events", &d.path("sent.jsonl"), 3000, 13);
    let port = two_free_ports();
    let listen = format!("127.0.0.1:{port}");
    let source = format!("kafka://{bootstrap}/events");
    let data = d.path("data").display().to_string();
    let mut cluster = two_process_run(&[
        "--source",
        &source,
        "--listen",
        &listen,
        "--data-dir",
        &data,
    ])
    .spawn()
    .unwrap();
    // Process 1 reads some of the five partitions; process 0 shows them all, once everything
    // is read and every partition's lag is 0.
    let started = Instant::now();
    let metrics = loop {
        if let Some((200, body)) = get(&listen, "/metrics")
            && body.contains("lambdaflow_records_in_total 3000")
            && (0..5).all(|p| {
                body.contains(&format!(
                    "lambdaflow_kafka_lag{{partition=\"events/{p}\"}} 0"
                ))
            })
        {
            break body;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = cluster.kill();
            panic!(
                "process 0 never served every partition's lag: {:?}",
                get(&listen, "/metrics")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &cluster.id().to_string()])
        .status();
    assert!(cluster.wait().unwrap().success());
    assert_eq!(
        metrics.matches("lambdaflow_kafka_lag{").count(),
        5,
        "{metrics}"
    );
}

/// Commits offset 0 for every partition of `events` to the group, as if nothing were read.
fn rewind_group(bootstrap: &str, partitions: i32) {
    let consumer = group_member(bootstrap);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset("events", p, Offset::Offset(0))
            .unwrap();
    }
    consumer
        .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .unwrap();
    drop(tpl);
}

#[test]
fn a_broker_that_goes_away_and_comes_back_loses_nothing() {
    let (mock, bootstrap) = mock(3);
    let d = Dirs::new();
    let file = d.path("same.jsonl");
    publish(&bootstrap, "events", &file, 2000, 21);

    let data = d.path("data");
    let views_out = d.path("views.json");
    let stderr = std::fs::File::create(d.path("stderr")).unwrap();
    let mut run = Command::new(env!("CARGO_BIN_EXE_lambdaflow"))
        .args([
            "run",
            "-q",
            "--workers",
            "2",
            "--commit-interval",
            "200ms",
            "--source",
            &format!("kafka://{bootstrap}/events"),
            "--data-dir",
            &data.display().to_string(),
            "--views-out",
            &views_out.display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let rows = |data: &Path| {
        if !data.join("events/_delta_log").exists() {
            return 0;
        }
        let lake = info(data);
        lake["events"]["rows"].as_i64().unwrap() + lake["dead_letters"]["rows"].as_i64().unwrap()
    };
    let wait_for = |n: i64| {
        let start = Instant::now();
        while rows(&data) < n {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the lake did not reach {n} rows: {}",
                std::fs::read_to_string(d.path("stderr")).unwrap()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_for(2000);

    // The broker goes away; a publisher keeps its messages until it is back.
    mock.broker_down(1).unwrap();
    let url = format!("kafka://{bootstrap}/events");
    let mut publisher = Command::new(env!("CARGO_BIN_EXE_lambdaflow"))
        .args([
            "generate",
            "--to",
            &url,
            "--count",
            "1000",
            "--seed",
            "22",
            "--bad-fraction",
            "0.01",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    mock.broker_up(1).unwrap();
    let published = publisher.wait().unwrap();
    assert!(published.success());
    append(
        &file,
        &ok_bytes(&[
            "generate",
            "--count",
            "1000",
            "--seed",
            "22",
            "--bad-fraction",
            "0.01",
        ]),
    );
    wait_for(3000);
    let pid = run.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(run.wait().unwrap().success());

    let said = std::fs::read_to_string(d.path("stderr")).unwrap();
    assert!(said.contains("waiting for the broker"), "{said}");
    assert!(said.contains("the broker is back"), "{said}");
    assert_eq!(rows(&data), 3000);
    assert_eq!(json(&views_out)["views"], file_views(&d, &file)["views"]);
    offsets_agree(&bootstrap, &data, 3);
}

#[test]
fn a_missing_topic_or_broker_is_one_clear_line() {
    let (_mock, bootstrap) = mock(1);
    let d = Dirs::new();
    let data = d.path("data").display().to_string();
    for (source, says) in [
        (
            format!("kafka://{bootstrap}/nope"),
            "topic `nope` does not exist",
        ),
        (
            "kafka://127.0.0.1:1/events?connect_timeout=2s".to_owned(),
            "no broker at 127.0.0.1:1 answered within 2s",
        ),
        (
            format!("kafka://{bootstrap}/events?start=soon"),
            "kafka start `soon`",
        ),
    ] {
        let out = lambdaflow(&["run", "-q", "--source", &source, "--data-dir", &data]);
        assert!(!out.status.success(), "{source}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{source}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{source}: {err}");
    }
    let out = lambdaflow(&["generate", "--to", &format!("kafka://{bootstrap}/nope")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("topic `nope` does not exist"));
}
