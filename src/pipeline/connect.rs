//! A cluster's processes connected to each other, then handed to timely's TCP layer.
//!
//! The handshake is timely's (`timely_communication::networking`): each process connects to
//! every process before it in the hostfile and sends its index (a big-endian `u64`), and accepts
//! a connection from every process after it. What differs is the waiting. timely binds its
//! listener only when the computation starts, and both sides sleep a whole second between
//! tries; here each process binds its listener first of all, before the first process prepares
//! the lake, so the others' connections are queued by the kernel at once, and a refused
//! connection is tried again after 20 ms. A cluster then starts as soon as its slowest process.
//!
//! One byte is added: a process answers each connection it accepts with [`READY`], and a process
//! that connects waits for it. The first process accepts only once it has prepared the lake, so
//! no other process starts (and reads the lake) before that; a queued connection alone would not
//! say so.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::{AllocatorBuilder, ProcessBuilder};
use timely::communication::{Hooks, WorkerGuards};
use timely::worker::Worker;

use super::Cluster;

/// The answer to an accepted connection: the process is ready to run.
const READY: u8 = 0x4c;

/// How long a refused connection waits before the next try.
const RETRY: Duration = Duration::from_millis(20);
/// After this long without reaching a process, say so (once).
const PATIENCE: Duration = Duration::from_secs(5);

/// Binds this process's address: from now on the others' connections wait in the kernel's
/// queue until [`execute`] accepts them.
pub(super) fn listen(cluster: &Cluster) -> Result<TcpListener, String> {
    let address = &cluster.addresses[cluster.process];
    TcpListener::bind(address).map_err(|e| {
        format!(
            "process {} cannot listen on {address} (its hostfile line): {e}",
            cluster.process
        )
    })
}

/// The streams to every other process, in process order (`None` at this process's own place).
fn sockets(cluster: &Cluster, listener: TcpListener) -> std::io::Result<Vec<Option<TcpStream>>> {
    let me = cluster.process;
    let mut out: Vec<Option<TcpStream>> = Vec::with_capacity(cluster.addresses.len());
    for (index, address) in cluster.addresses.iter().enumerate().take(me) {
        let started = Instant::now();
        let mut told = false;
        let mut stream = loop {
            match TcpStream::connect(address) {
                Ok(stream) => break stream,
                Err(e) => {
                    if !told && started.elapsed() > PATIENCE {
                        told = true;
                        eprintln!(
                            "lambdaflow: process {me} is waiting for process {index} at \
                             {address} ({e})"
                        );
                    }
                    std::thread::sleep(RETRY);
                }
            }
        };
        stream.set_nodelay(true)?;
        stream.write_all(&(me as u64).to_be_bytes())?;
        let mut ready = [0u8; 1];
        stream.read_exact(&mut ready).map_err(|e| {
            std::io::Error::other(format!(
                "process {index} at {address} ended before it was ready ({e}); see its output"
            ))
        })?;
        if ready[0] != READY {
            return Err(std::io::Error::other(format!(
                "process {index} at {address} did not answer as a lambdaflow process does"
            )));
        }
        out.push(Some(stream));
    }
    out.push(None);
    let later = cluster.addresses.len() - me - 1;
    let mut accepted: Vec<Option<TcpStream>> = (0..later).map(|_| None).collect();
    for _ in 0..later {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut index = [0u8; 8];
        stream.read_exact(&mut index)?;
        let index = u64::from_be_bytes(index) as usize;
        match index.checked_sub(me + 1).and_then(|i| accepted.get_mut(i)) {
            Some(slot @ None) => {
                stream.write_all(&[READY])?;
                *slot = Some(stream);
            }
            _ => {
                return Err(std::io::Error::other(format!(
                    "a connection said it was process {index}, which process {me} does not \
                     wait for (do all processes have the same hostfile?)"
                )));
            }
        }
    }
    out.extend(accepted);
    Ok(out)
}

/// Runs `func` on `workers` threads of this process of `cluster`, once every process is
/// connected, as `timely::execute` does with `CommunicationConfig::Cluster`.
pub(super) fn execute<T, F>(
    cluster: &Cluster,
    workers: usize,
    listener: TcpListener,
    func: F,
) -> Result<WorkerGuards<T>, String>
where
    T: Send + 'static,
    F: Fn(&mut Worker) -> T + Send + Sync + 'static,
{
    let sockets = sockets(cluster, listener)
        .map_err(|e| format!("connecting the cluster's processes: {e}"))?;
    let hooks = Hooks::default();
    let process =
        ProcessBuilder::new_typed_vector(workers, hooks.refill.clone(), hooks.spill.clone());
    let (builders, guard) =
        initialize_networking_from_sockets(process, sockets, cluster.process, workers, hooks)
            .map_err(|e| format!("starting the cluster's connections: {e}"))?;
    let builders = builders.into_iter().map(AllocatorBuilder::Tcp).collect();
    timely::execute::execute_from(
        builders,
        Box::new(guard),
        timely::WorkerConfig::default(),
        func,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[test]
    fn processes_connect_in_order_and_start_once_the_first_is_ready() {
        let listeners: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let addresses: Vec<String> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().to_string())
            .collect();
        // Process 0 is slow to get ready (it prepares the lake); the others must wait for it.
        let ready = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = listeners
            .into_iter()
            .enumerate()
            .map(|(process, listener)| {
                let cluster = Cluster {
                    process,
                    addresses: addresses.clone(),
                };
                let ready = ready.clone();
                std::thread::spawn(move || {
                    if process == 0 {
                        std::thread::sleep(Duration::from_millis(200));
                        ready.store(true, Ordering::SeqCst);
                    }
                    let sockets = sockets(&cluster, listener).unwrap();
                    (ready.load(Ordering::SeqCst), sockets)
                })
            })
            .collect();
        for (process, handle) in handles.into_iter().enumerate() {
            let (started_after_ready, sockets) = handle.join().unwrap();
            assert!(started_after_ready, "process {process} started first");
            let layout: Vec<bool> = sockets.iter().map(Option::is_some).collect();
            let mut want = vec![true; 3];
            want[process] = false;
            assert_eq!(layout, want, "process {process}");
        }
    }

    #[test]
    fn a_stranger_that_claims_a_wrong_index_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let cluster = Cluster {
            process: 0,
            addresses: vec![address.clone(), "127.0.0.1:1".into()],
        };
        let stranger = std::thread::spawn(move || {
            let mut stream = TcpStream::connect(address).unwrap();
            stream.write_all(&7u64.to_be_bytes()).unwrap();
        });
        let err = sockets(&cluster, listener).unwrap_err();
        stranger.join().unwrap();
        assert!(err.to_string().contains("process 7"), "{err}");
    }
}
