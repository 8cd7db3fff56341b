//! librdkafka's in-process mock Kafka cluster as a process of its own, for tests and
//! experiments without a broker (the crash test uses it).
//!
//! ```text
//! cargo run --example mock_kafka -- [TOPIC [PARTITIONS]]
//! ```
//!
//! Creates TOPIC (default `events`, 4 partitions) on a one-broker cluster, prints the bootstrap
//! address (`127.0.0.1:PORT`) as its first line, and runs until standard input closes.
//! SIGUSR1 takes the broker down, SIGUSR2 brings it back.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::mocking::MockCluster;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "events".to_owned());
    let partitions: i32 = match args.next() {
        Some(n) => n.parse()?,
        None => 4,
    };
    let cluster = MockCluster::new(1)?;
    cluster.create_topic(&topic, partitions, 1)?;
    println!("{}", cluster.bootstrap_servers());

    let (down, up) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, down.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGUSR2, up.clone())?;
    let closed = Arc::new(AtomicBool::new(false));
    let stdin_closed = closed.clone();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        stdin_closed.store(true, Ordering::SeqCst);
    });
    while !closed.load(Ordering::SeqCst) {
        if down.swap(false, Ordering::SeqCst) {
            cluster.broker_down(1)?;
            eprintln!("mock_kafka: broker down");
        }
        if up.swap(false, Ordering::SeqCst) {
            cluster.broker_up(1)?;
            eprintln!("mock_kafka: broker up");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
