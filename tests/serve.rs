//! The HTTP API of a running pipeline, from the outside: every endpoint, filters, ordering,
//! errors, the bearer token, Prometheus text, and views that agree with the counters.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// A `lambdaflow run` serving on a free port; interrupted when dropped.
struct Running {
    child: Child,
    addr: String,
    _tmp: tempfile::TempDir,
}

impl Running {
    fn start(extra: &[&str]) -> Running {
        let tmp = tempfile::tempdir().unwrap();
        let events = tmp.path().join("events.jsonl");
        let out = Command::new(env!("CARGO_BIN_EXE_lambdaflow"))
            .args([
                "generate",
                "--count",
                "5000",
                "--bad-fraction",
                "0.02",
                "-o",
            ])
            .arg(&events)
            .output()
            .unwrap();
        assert!(out.status.success());
        let mut child = Command::new(env!("CARGO_BIN_EXE_lambdaflow"))
            .args([
                "run",
                "--workers",
                "2",
                "--listen",
                "127.0.0.1:0",
                "--no-lake",
            ])
            .arg("--source")
            .arg(format!("file:{}", events.display()))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("the run printed its address").unwrap();
            if let Some(rest) = line.strip_prefix("dashboard: http://") {
                break rest.split('/').next().unwrap().to_owned();
            }
        };
        // Keep reading the live lines so that the run never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Running {
            child,
            addr,
            _tmp: tmp,
        }
    }

    /// Sends `method path` with optional headers; returns the status, headers and body.
    fn request(&self, method: &str, path: &str, headers: &[&str]) -> (u16, String, String) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for h in headers {
            request.push_str(h);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            unchunk(body)
        } else {
            body.to_owned()
        };
        (status, head.to_owned(), body)
    }

    fn json(&self, path: &str) -> Json {
        let (status, _, body) = self.request("GET", path, &[]);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until all 5,000 records are in the views.
    fn settled(&self) {
        let start = Instant::now();
        loop {
            let status = self.json("/api/status");
            let views = self.json("/api/views/events_by_type");
            let dead = self.json("/api/views/dead_letters_by_reason");
            let sum = |v: &Json| -> i64 {
                v["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["value"]["count"].as_i64().unwrap())
                    .sum()
            };
            if status["records_in"] == 5000 && sum(&views) + sum(&dead) == 5000 {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{status}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn unchunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

fn rows(v: &Json) -> &Vec<Json> {
    v["rows"].as_array().unwrap()
}

#[test]
fn every_endpoint_answers_and_the_views_agree_with_the_counters() {
    let run = Running::start(&[]);
    run.settled();

    let list = run.json("/api/views");
    let names: Vec<&str> = list["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        lambdaflow::views::builtin::definitions().len(),
        "{names:?}"
    );
    assert!(
        list["views"][0]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );

    // Consistency: the views, read as of one epoch, hold every record once.
    let (by_type, dead) = loop {
        let a = run.json("/api/views/events_by_type");
        let b = run.json("/api/views/dead_letters_by_reason");
        if a["as_of_epoch"] == b["as_of_epoch"] {
            break (a, b);
        }
    };
    let status = run.json("/api/status");
    let sum = |v: &Json| -> u64 {
        rows(v)
            .iter()
            .map(|r| r["value"]["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        sum(&by_type),
        status["records_in"].as_u64().unwrap() - status["dead_letters"].as_u64().unwrap()
    );
    assert_eq!(sum(&dead), status["dead_letters"].as_u64().unwrap());
    assert_eq!(status["events"], sum(&by_type));
    assert_eq!(status["workers"], 2);
    for field in ["p50", "p99", "p999", "max"] {
        assert!(
            status["epoch_latency_ms"][field].as_f64().is_some(),
            "{status}"
        );
    }
    assert!(
        status["epochs"]["closed"].as_u64().unwrap()
            <= status["epochs"]["ingested"].as_u64().unwrap()
    );
    assert_eq!(status["positions"].as_array().unwrap().len(), 2);

    // Filters, limits and ordering.
    let us = run.json("/api/views/revenue_by_country?key=US");
    assert_eq!(rows(&us).len(), 1);
    assert_eq!(rows(&us)[0]["key"]["country"], "US");
    let web = run.json("/api/views/events_by_source?key=web");
    assert!(!rows(&web).is_empty());
    assert!(
        rows(&web).iter().all(|r| r["key"]["source"] == "web"),
        "{web}"
    );
    let two = run.json("/api/views/revenue_by_country?limit=2&order=-value");
    assert_eq!(rows(&two).len(), 2);
    assert_eq!(two["total_rows"], 12);
    let all = run.json("/api/views/revenue_by_country?order=-value");
    let revenue: Vec<f64> = rows(&all)
        .iter()
        .map(|r| r["value"]["revenue"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(revenue.windows(2).all(|w| w[0] >= w[1]), "{revenue:?}");
    assert_eq!(rows(&two)[..], rows(&all)[..2]);
    assert!(all["as_of_epoch"].as_u64().is_some());

    // Errors: JSON bodies with the right status.
    for (method, path, code, says) in [
        ("GET", "/api/views/nope", 404, "unknown view `nope`"),
        (
            "GET",
            "/api/views/events_by_type?limit=0",
            400,
            "limit must be between",
        ),
        (
            "GET",
            "/api/views/events_by_type?limit=many",
            400,
            "bad query",
        ),
        (
            "GET",
            "/api/views/events_by_type?sort=key",
            400,
            "unknown field `sort`",
        ),
        (
            "GET",
            "/api/views/events_by_type?order=random",
            400,
            "order `random`",
        ),
        ("GET", "/api/nothing", 404, "no such endpoint"),
        ("POST", "/api/views", 405, "only GET"),
    ] {
        let (status, _, body) = run.request(method, path, &[]);
        assert_eq!(status, code, "{method} {path}: {body}");
        let body: Json =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{path}: {body}"
        );
    }

    // The dashboard is one page with everything inline (no other host is named).
    let (status, head, page) = run.request("GET", "/", &[]);
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("text/html"));
    assert!(
        page.contains("/api/status") && !page.contains("https://"),
        "the page loads nothing from elsewhere"
    );
}

#[test]
fn metrics_are_prometheus_text() {
    let run = Running::start(&[]);
    run.settled();
    let (status, head, text) = run.request("GET", "/metrics", &[]);
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let mut samples = std::collections::BTreeMap::new();
    let mut typed = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        let family = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            typed.contains(name) || typed.contains(family),
            "{line}: no TYPE before it"
        );
        samples.insert(series.to_owned(), value);
    }
    assert_eq!(samples["lambdaflow_records_in_total"], 5000.0);
    assert_eq!(
        samples["lambdaflow_events_total"] + samples["lambdaflow_dead_letters_total"],
        5000.0
    );
    assert_eq!(
        samples["lambdaflow_view_rows{view=\"revenue_by_country\"}"],
        12.0
    );
    let buckets: Vec<f64> = samples
        .iter()
        .filter(|(k, _)| k.starts_with("lambdaflow_epoch_latency_seconds_bucket"))
        .map(|(_, v)| *v)
        .collect();
    assert!(buckets.len() >= 10);
    assert_eq!(
        samples["lambdaflow_epoch_latency_seconds_bucket{le=\"+Inf\"}"],
        samples["lambdaflow_epoch_latency_seconds_count"]
    );
}

#[test]
fn a_token_guards_every_endpoint_but_the_page() {
    let run = Running::start(&["--token", "s3cret"]);
    let (status, head, body) = run.request("GET", "/api/status", &[]);
    assert_eq!(status, 401, "{body}");
    assert!(
        head.contains("www-authenticate: Bearer") || head.contains("WWW-Authenticate: Bearer"),
        "{head}"
    );
    assert!(body.contains("Authorization: Bearer"), "{body}");
    for path in ["/api/views", "/api/views/events_by_type", "/metrics"] {
        assert_eq!(
            run.request("GET", path, &["Authorization: Bearer wrong"]).0,
            401,
            "{path}"
        );
        assert_eq!(
            run.request("GET", path, &["Authorization: Bearer s3cret"])
                .0,
            200,
            "{path}"
        );
    }
    assert_eq!(run.request("GET", "/", &[]).0, 200);
    // The scheme is case-insensitive (RFC 9110), spaces around the token are fine.
    for header in [
        "Authorization: bearer s3cret",
        "Authorization: BEARER  s3cret ",
    ] {
        assert_eq!(
            run.request("GET", "/api/status", &[header]).0,
            200,
            "{header}"
        );
    }
    assert_eq!(
        run.request("GET", "/api/status", &["Authorization: Basic s3cret"])
            .0,
        401
    );
}

impl Running {
    /// Sends raw bytes; returns everything the server answered before closing.
    fn raw(&self, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        // The server may close before reading it all (a header that is too large).
        let _ = stream.write_all(request);
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    }
}

#[test]
fn requests_hyper_cannot_parse_get_a_json_error_too() {
    let run = Running::start(&[]);
    let big = format!(
        "GET /api/status HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(600_000)
    );
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let cases: [(&[u8], &str); 4] = [
        (
            b"GET /api/status HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
            "400",
        ),
        (b"NOT HTTP AT ALL\r\n\r\n", "400"),
        (big.as_bytes(), "431"),
        (long_uri.as_bytes(), "414"),
    ];
    for (request, status) in cases {
        let response = run.raw(request);
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let body: Json = serde_json::from_str(body).unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    let (status, _, body) = run.request("GET", "/api/views/%ff%fe", &[]);
    assert_eq!(status, 400);
    assert!(serde_json::from_str::<Json>(&body).unwrap()["error"].is_string());
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let run = Running::start(&[]);
    let mut stream = TcpStream::connect(&run.addr).unwrap();
    stream
        .write_all(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // The server's deadline is 10 s; this only bounds the wait.
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let started = Instant::now();
    let mut response = Vec::new();
    let read = stream.read_to_end(&mut response);
    assert!(read.is_ok(), "the connection was not closed: {read:?}");
    assert!(response.is_empty() || String::from_utf8_lossy(&response).starts_with("HTTP/1.1 4"));
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_taken_port_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_lambdaflow"))
        .args(["run", "--no-lake", "--listen", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
