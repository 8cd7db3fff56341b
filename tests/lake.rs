//! The batch layer end to end, from the built binary: `run` writes the lake, `batch` and
//! `verify` recompute from it, `lake` compacts and time-travels, and a restart continues.

use std::path::{Path, PathBuf};

#[path = "support/run.rs"]
mod run;

use run::{Dirs, json as views, lambdaflow, ok};

fn run_file(input: &str, data: &str, workers: &str, views_out: &str) {
    ok(&[
        "run",
        "-q",
        "--until-exhausted",
        "--workers",
        workers,
        "--epoch-records",
        "1000",
        "--commit-epochs",
        "3",
        "--source",
        &format!("file:{input}"),
        "--data-dir",
        data,
        "--views-out",
        views_out,
    ]);
}

fn info(data: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["lake", "info", "--json", "--data-dir", data];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(&args)).unwrap()
}

#[test]
fn batch_and_verify_agree_with_run_and_verify_catches_a_removed_file() {
    let d = Dirs::new();
    let input = d.generate("in.jsonl", 30_000, 3);
    let data = d.arg("data");
    run_file(&input, &data, "2", &d.arg("run.json"));
    let live = views(Path::new(&d.arg("run.json")));

    ok(&[
        "batch",
        "--data-dir",
        &data,
        "--workers",
        "2",
        "--views-out",
        &d.arg("batch.json"),
    ]);
    let batch = views(Path::new(&d.arg("batch.json")));
    assert_eq!(batch["views"], live["views"]);
    assert_eq!(batch["as_of_epoch"], live["as_of_epoch"]);

    let verified = ok(&["verify", "--data-dir", &data]);
    assert!(verified.starts_with("ok: 11 views equal"), "{verified}");

    // One day's batch job: every event of the input falls on 2025-01-01.
    ok(&[
        "batch",
        "--data-dir",
        &data,
        "--from",
        "2025-01-01",
        "--to",
        "2025-01-01",
        "--views-out",
        &d.arg("day.json"),
    ]);
    assert_eq!(
        views(Path::new(&d.arg("day.json")))["views"]["events_by_type"],
        live["views"]["events_by_type"]
    );
    ok(&[
        "batch",
        "--data-dir",
        &data,
        "--from",
        "2025-01-02",
        "--views-out",
        &d.arg("none.json"),
    ]);
    assert_eq!(
        views(Path::new(&d.arg("none.json")))["views"]["events_by_type"],
        serde_json::json!([])
    );

    // Tamper: remove a committed data file.
    let info = info(&data, &[]);
    assert!(info["events"]["files"].as_u64().unwrap() > 1);
    let victim = walk(Path::new(&data).join("events").as_path())
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    std::fs::remove_file(&victim).unwrap();
    let out = lambdaflow(&["verify", "--data-dir", &data]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(victim.file_name().unwrap().to_str().unwrap()),
        "verify should name the missing file: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.file_name().unwrap().to_string_lossy().starts_with('_') {
                out.extend(walk(&path));
            }
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn a_second_run_continues_where_the_first_stopped() {
    let d = Dirs::new();
    let data = d.arg("data");
    let generated = |count: &str, out: &str, data: &str| {
        ok(&[
            "run",
            "-q",
            "--until-exhausted",
            "--workers",
            "2",
            "--epoch-records",
            "500",
            "--commit-epochs",
            "2",
            "--source",
            "generate",
            "--rate",
            "0",
            "--seed",
            "4",
            "--start",
            "2025-06-01T00:00:00Z",
            "--count",
            count,
            "--data-dir",
            data,
            "--views-out",
            out,
        ])
    };
    generated("8000", &d.arg("first.json"), &data);
    generated("20000", &d.arg("second.json"), &data);
    generated("20000", &d.arg("whole.json"), &d.arg("whole"));
    let second = views(Path::new(&d.arg("second.json")));
    let whole = views(Path::new(&d.arg("whole.json")));
    assert_eq!(second["views"], whole["views"]);
    let events: i64 = second["views"]["events_by_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_i64().unwrap())
        .sum();
    let dead: i64 = second["views"]["dead_letters_by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_i64().unwrap())
        .sum();
    assert_eq!(events + dead, 20_000);
    let info = info(&data, &[]);
    assert_eq!(info["events"]["rows"].as_i64().unwrap(), events);
    assert_eq!(info["dead_letters"]["rows"].as_i64().unwrap(), dead);

    // Another worker count cannot resume the per-worker positions: one clear line.
    let out = lambdaflow(&[
        "run",
        "-q",
        "--until-exhausted",
        "--workers",
        "3",
        "--source",
        "generate",
        "--rate",
        "0",
        "--count",
        "20000",
        "--data-dir",
        &data,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run with --workers 2"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn compaction_keeps_the_content_and_time_travel_reads_older_versions() {
    let d = Dirs::new();
    let data = d.arg("data");
    let first = d.generate("a.jsonl", 20_000, 7);
    run_file(&first, &data, "2", &d.arg("first.json"));
    let v1 = info(&data, &[])["events"]["version"].as_u64().unwrap();

    let before = info(&data, &[]);
    let files_before = before["events"]["files"].as_u64().unwrap();
    ok(&["lake", "compact", "--data-dir", &data]);
    let after = info(&data, &[]);
    assert!(after["events"]["files"].as_u64().unwrap() < files_before);
    assert_eq!(after["events"]["rows"], before["events"]["rows"]);
    assert_eq!(after["events"]["version"].as_u64().unwrap(), v1 + 1);

    ok(&[
        "batch",
        "--data-dir",
        &data,
        "--views-out",
        &d.arg("compacted.json"),
    ]);
    let compacted = views(Path::new(&d.arg("compacted.json")));
    assert_eq!(
        compacted["views"],
        views(Path::new(&d.arg("first.json")))["views"]
    );
    let verified = ok(&["verify", "--data-dir", &data]);
    assert!(verified.starts_with("ok:"), "{verified}");

    // As of the version before compaction: the old files, the same content.
    let old = info(&data, &["--as-of-version", &v1.to_string()]);
    assert_eq!(old["events"]["files"].as_u64().unwrap(), files_before);
    ok(&[
        "batch",
        "--data-dir",
        &data,
        "--as-of-version",
        &v1.to_string(),
        "--views-out",
        &d.arg("old.json"),
    ]);
    assert_eq!(
        views(Path::new(&d.arg("old.json")))["views"],
        compacted["views"]
    );

    // As of an earlier epoch: fewer events than in all.
    let count = |v: &serde_json::Value| -> i64 {
        v["views"]["events_by_type"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"].as_i64().unwrap())
            .sum()
    };
    ok(&[
        "batch",
        "--data-dir",
        &data,
        "--as-of-epoch",
        "0",
        "--views-out",
        &d.arg("e1.json"),
    ]);
    let early = count(&views(Path::new(&d.arg("e1.json"))));
    assert!(early > 0 && early < count(&compacted), "{early}");

    // Vacuum with no retention removes the files compaction replaced; the latest version
    // still reads the same.
    let out = ok(&["lake", "vacuum", "--data-dir", &data, "--retain", "0s"]);
    assert!(out.contains("expired"), "{out}");
    ok(&[
        "batch",
        "--data-dir",
        &data,
        "--views-out",
        &d.arg("vacuumed.json"),
    ]);
    assert_eq!(
        views(Path::new(&d.arg("vacuumed.json")))["views"],
        compacted["views"]
    );
}

#[test]
fn a_new_optional_field_adds_a_nullable_column() {
    let d = Dirs::new();
    let data = d.arg("data");
    let dir = d.arg("inputs");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        format!("{dir}/1.jsonl"),
        r#"{"event_id":"a","event_type":"purchase","user_id":"u1","event_timestamp":"2025-01-01T00:00:00Z","country":"DE","price":"1.50","product":"p"}
"#,
    )
    .unwrap();
    let run = |config: Option<&str>| {
        let mut args = vec!["run", "-q", "--until-exhausted", "--source"];
        let source = format!("file:{dir}/1.jsonl");
        args.push(&source);
        args.extend(["--data-dir", &data]);
        if let Some(c) = config {
            args.extend(["--config", c]);
        }
        lambdaflow(&args)
    };
    assert!(run(None).status.success());
    let config = d.arg("coupon.toml");
    let mut text = lambdaflow::config::DEFAULT_CONFIG.to_string();
    text.push_str("\n[[schema.fields]]\nname = \"coupon\"\ntype = \"string\"\n");
    std::fs::write(&config, &text).unwrap();
    // Same source: the run resumes at the end of the file and adds the column.
    let out = run(Some(&config));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_dir(format!("{data}/events/_delta_log")).unwrap();
    let schemas: Vec<String> = log
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .filter(|t| t.contains("schemaString"))
        .collect();
    assert!(
        schemas.iter().any(|s| s.contains("coupon")),
        "no schema with coupon"
    );
    // Old files stay readable under the new schema.
    ok(&[
        "batch",
        "--data-dir",
        &data,
        "--views-out",
        &d.arg("b.json"),
    ]);
    let b = views(Path::new(&d.arg("b.json")));
    assert_eq!(
        b["views"]["events_by_type"],
        serde_json::json!([{"key": "purchase", "value": 1}])
    );

    // A new required field is refused with one line.
    let mut strict = lambdaflow::config::DEFAULT_CONFIG.to_string();
    strict.push_str("\n[[schema.fields]]\nname = \"coupon\"\ntype = \"string\"\n[[schema.fields]]\nname = \"tier\"\ntype = \"int\"\nrequired = true\n");
    std::fs::write(&config, &strict).unwrap();
    let out = run(Some(&config));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`tier` is required"), "{err}");
}

#[test]
fn an_unusable_data_dir_is_one_clear_error() {
    let d = Dirs::new();
    let file = d.arg("plain-file");
    std::fs::write(&file, "x").unwrap();
    let out = lambdaflow(&[
        "run",
        "-q",
        "--until-exhausted",
        "--source",
        "generate",
        "--count",
        "10",
        "--data-dir",
        &format!("{file}/data"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plain-file/data") && err.trim().lines().count() == 1,
        "{err}"
    );
    let out = lambdaflow(&["verify", "--data-dir", &d.arg("nothing-here")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a lambdaflow lake"), "{err}");
}
