//! Clusters: the flags that make a process one of several in one timely computation, and
//! `lambdaflow cluster`, which starts such processes on this machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::pipeline::Cluster;

/// The flags of a process of a cluster (timely's `-n`, `-p` and `-h`).
#[derive(Args, Clone, Default)]
pub(crate) struct ClusterArgs {
    /// Processes in the computation, each with `--workers` threads (with `--process` and
    /// `--hostfile`; `lambdaflow cluster` passes all three).
    #[arg(long, value_name = "N")]
    pub(crate) processes: Option<usize>,
    /// This process's index among them, from 0. Process 0 owns the lake, commits and serves.
    #[arg(long, value_name = "I")]
    pub(crate) process: Option<usize>,
    /// The processes' addresses, `host:port`, one per line in process order.
    #[arg(long, value_name = "FILE")]
    pub(crate) hostfile: Option<PathBuf>,
}

/// The most processes a cluster may have.
const MAX_PROCESSES: usize = 256;

impl ClusterArgs {
    /// The cluster the flags describe; `None` for one process.
    pub(crate) fn cluster(&self) -> Result<Option<Cluster>> {
        let (n, process, hostfile) = match (self.processes, self.process, &self.hostfile) {
            (None | Some(1), None | Some(0), None) => return Ok(None),
            (Some(n), Some(p), Some(h)) => (n, p, h),
            _ => bail!("--processes, --process and --hostfile go together"),
        };
        if !(1..=MAX_PROCESSES).contains(&n) {
            bail!("processes must be between 1 and {MAX_PROCESSES}, not {n}");
        }
        if process >= n {
            bail!(
                "--process {process} is not one of the {n} processes (0 to {})",
                n - 1
            );
        }
        let addresses = read_hostfile(hostfile)?;
        if addresses.len() < n {
            bail!(
                "{} lists {} address(es) for {n} processes",
                hostfile.display(),
                addresses.len()
            );
        }
        Ok(Some(Cluster {
            process,
            addresses: addresses.into_iter().take(n).collect(),
        }))
    }
}

/// A hostfile's addresses: one `host:port` per line; blank lines and `#` comments skipped.
fn read_hostfile(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the hostfile {}", path.display()))?;
    let mut addresses = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let port = line.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
        if !matches!(port, Some(Ok(_))) {
            bail!(
                "{} line {}: `{line}` is not host:port",
                path.display(),
                i + 1
            );
        }
        addresses.push(line.to_owned());
    }
    Ok(addresses)
}

/// `lambdaflow cluster`.
#[derive(Args)]
pub(crate) struct ClusterLaunchArgs {
    /// Processes to start.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 2)]
    pub(crate) processes: usize,
    /// Worker threads in each process.
    #[arg(long, short = 'w', value_name = "N", default_value_t = 1)]
    pub(crate) workers: usize,
    /// When a process dies, stop the others and start the whole cluster again, from the lake's
    /// last commit, up to this many times.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) restart: u32,
    /// What every process runs, after `--`: `run ...`, `batch ...` or `verify ...`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}

/// How long the processes have to stop after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Starts the processes of a cluster on this machine and waits for them; its exit code is the
/// cluster's (the first failure's).
pub(crate) fn launch(args: ClusterLaunchArgs) -> Result<u8> {
    if !(1..=MAX_PROCESSES).contains(&args.processes) {
        bail!(
            "processes must be between 1 and {MAX_PROCESSES}, not {}",
            args.processes
        );
    }
    if !matches!(
        args.command.first().map(String::as_str),
        Some("run" | "batch" | "verify" | "bench")
    ) {
        bail!(
            "a cluster runs `run`, `batch`, `verify` or `bench`, as in `lambdaflow cluster -- run ...`"
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let exe = std::env::current_exe().context("cannot find this program")?;
    let mut restarts = 0;
    loop {
        let dir = tempfile::tempdir().context("cannot create the hostfile")?;
        let hostfile = dir.path().join("hosts");
        std::fs::write(&hostfile, free_addresses(args.processes)?.join("\n"))
            .context("cannot write the hostfile")?;
        let mut children = Vec::new();
        let mut forwarding = Vec::new();
        for i in 0..args.processes {
            let (child, threads) = spawn(&exe, &args, i, &hostfile)?;
            children.push(child);
            forwarding.extend(threads);
        }
        let failed = wait(&mut children, &stop);
        // Every line the processes wrote is passed on before this one ends.
        for thread in forwarding {
            let _ = thread.join();
        }
        let status = match failed {
            None => return Ok(0),
            Some(status) => status,
        };
        if stop.load(Ordering::SeqCst) || restarts >= args.restart {
            return Ok(exit_code(status));
        }
        restarts += 1;
        eprintln!(
            "lambdaflow cluster: a process ended ({}); restarting the cluster from the last commit ({restarts} of {})",
            describe(status),
            args.restart
        );
    }
}

/// `count` addresses on this machine with ports free now.
fn free_addresses(count: usize) -> Result<Vec<String>> {
    // All bound at once, so that no two are the same port.
    let listeners = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot find free ports")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.to_string()))
        .collect()
}

/// Starts process `i`: the command with the cluster's flags. Process 0 writes to this terminal;
/// the others' lines are prefixed with their index.
fn spawn(
    exe: &Path,
    args: &ClusterLaunchArgs,
    i: usize,
    hostfile: &Path,
) -> Result<(Child, Vec<JoinHandle<()>>)> {
    let mut command = Command::new(exe);
    command.args(&args.command).args([
        "--workers".to_owned(),
        args.workers.to_string(),
        "--processes".to_owned(),
        args.processes.to_string(),
        "--process".to_owned(),
        i.to_string(),
        "--hostfile".to_owned(),
        hostfile.display().to_string(),
    ]);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start process {i}"))?;
    let prefix = if i == 0 {
        String::new()
    } else {
        format!("[process {i}] ")
    };
    let mut threads = Vec::new();
    if let Some(out) = child.stdout.take() {
        threads.push(forward(out, prefix.clone(), false));
    }
    if let Some(err) = child.stderr.take() {
        threads.push(forward(err, prefix, true));
    }
    Ok((child, threads))
}

/// Copies a child's lines to this process's stdout or stderr, prefixed.
fn forward(from: impl Read + Send + 'static, prefix: String, to_stderr: bool) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            let _ = if to_stderr {
                writeln!(std::io::stderr().lock(), "{prefix}{line}")
            } else {
                writeln!(std::io::stdout().lock(), "{prefix}{line}")
            };
        }
    })
}

/// Waits for every process. Once `stop` is set, asks the others to stop (SIGTERM) and kills
/// them after [`STOP_GRACE`]; once one fails, kills the others at once: a cluster cannot go on
/// without one of its processes, and the lake is safe from a SIGKILL. The first failure's
/// status, if any.
fn wait(children: &mut [Child], stop: &AtomicBool) -> Option<ExitStatus> {
    let mut done: Vec<Option<ExitStatus>> = vec![None; children.len()];
    let mut failed: Option<ExitStatus> = None;
    let mut stopping: Option<Instant> = None;
    loop {
        for (child, status) in children.iter_mut().zip(done.iter_mut()) {
            if status.is_none()
                && let Ok(Some(s)) = child.try_wait()
            {
                *status = Some(s);
                if !s.success() && failed.is_none() {
                    failed = Some(s);
                }
            }
        }
        if done.iter().all(Option::is_some) {
            return failed;
        }
        let asked = stop.load(Ordering::SeqCst);
        match stopping {
            None if failed.is_some() => {
                for (child, _) in children.iter_mut().zip(&done).filter(|(_, s)| s.is_none()) {
                    let _ = child.kill();
                }
                stopping = Some(Instant::now());
            }
            None if asked => {
                for (child, _) in children.iter().zip(&done).filter(|(_, s)| s.is_none()) {
                    terminate(child);
                }
                stopping = Some(Instant::now());
            }
            Some(since) if since.elapsed() > STOP_GRACE => {
                for (child, _) in children.iter_mut().zip(&done).filter(|(_, s)| s.is_none()) {
                    let _ = child.kill();
                }
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asks a process to stop, as Ctrl+C does.
fn terminate(child: &Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "unknown status".to_owned(),
    }
}

fn exit_code(status: ExitStatus) -> u8 {
    status.code().map_or(1, |code| code.clamp(1, 255) as u8)
}
