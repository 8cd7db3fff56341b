//! The batch layer end to end, from the built binary: `run` writes the lake, `batch` and
//! `verify` recompute from it, `lake` compacts and time-travels, and a restart continues.

use std::path::{Path, PathBuf};

#[path = "support/run.rs"]
mod run;

#[path = "support/reference.rs"]
#[allow(dead_code)]
mod reference;

use run::{Dirs, json as views, lambdaflow, ok};

fn run_file(input: &str, data: &str, workers: &str, views_out: &str) {
    run_with(
        input,
        data,
        workers,
        "1000",
        "3",
        &["--views-out", views_out],
    );
}

/// `run --until-exhausted` over `input` into the lake at `data`, with epochs of `epoch_records`
/// records, a commit every `commit_epochs` epochs, and `extra` flags.
fn run_with(
    input: &str,
    data: &str,
    workers: &str,
    epoch_records: &str,
    commit_epochs: &str,
    extra: &[&str],
) {
    let source = format!("file:{input}");
    let mut args = vec![
        "run",
        "-q",
        "--until-exhausted",
        "--workers",
        workers,
        "--epoch-records",
        epoch_records,
        "--commit-epochs",
        commit_epochs,
        "--source",
        &source,
        "--data-dir",
        data,
    ];
    args.extend_from_slice(extra);
    ok(&args);
}

/// The record batches of a Parquet file.
fn batches(path: &Path) -> Vec<arrow_array::RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `run --until-exhausted` of `count` events generated with `seed` from 2025-06-01 on `workers`
/// workers, with `extra` flags, into the lake at `data` (epochs of 500 records, a commit every 2
/// epochs), the views written to `out`.
fn generated_run(
    extra: &[&str],
    workers: &str,
    seed: &str,
    count: &str,
    out: &str,
    data: &str,
) -> String {
    let mut args = vec!["run", "-q"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "--until-exhausted",
        "--workers",
        workers,
        "--epoch-records",
        "500",
        "--commit-epochs",
        "2",
        "--source",
        "generate",
        "--rate",
        "0",
        "--seed",
        seed,
        "--start",
        "2025-06-01T00:00:00Z",
        "--count",
        count,
        "--data-dir",
        data,
        "--views-out",
        out,
    ]);
    ok(&args)
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
    let generated_by = |workers: &str, count: &str, out: &str, data: &str| {
        generated_run(&[], workers, "4", count, out, data)
    };
    let generated = |count: &str, out: &str, data: &str| generated_by("2", count, out, data);
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
        .map(|r| r["value"]["count"].as_i64().unwrap())
        .sum();
    let dead: i64 = second["views"]["dead_letters_by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"]["count"].as_i64().unwrap())
        .sum();
    assert_eq!(events + dead, 20_000);
    let info = info(&data, &[]);
    assert_eq!(info["events"]["rows"].as_i64().unwrap(), events);
    assert_eq!(info["dead_letters"]["rows"].as_i64().unwrap(), dead);

    // Another number of workers takes up the generator's streams where they stood: the
    // lake goes on from 20,000 events to 30,000, each once, as one run of them all.
    generated_by("3", "30000", &d.arg("third.json"), &data);
    generated_by("1", "30000", &d.arg("whole3.json"), &d.arg("whole3"));
    let third = views(Path::new(&d.arg("third.json")));
    assert_eq!(
        third["views"],
        views(Path::new(&d.arg("whole3.json")))["views"]
    );
    let after = self::info(&data, &[]);
    assert_eq!(
        after["events"]["rows"].as_i64().unwrap() + after["dead_letters"]["rows"].as_i64().unwrap(),
        30_000
    );
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
    // Each column keeps the encoding the run chose: compaction never grows the lake.
    let bytes = |v: &serde_json::Value| v["events"]["bytes"].as_u64().unwrap() as f64;
    assert!(
        bytes(&after) <= bytes(&before) * 1.02,
        "{} bytes -> {}",
        bytes(&before),
        bytes(&after)
    );
    assert_eq!(after["events"]["version"].as_u64().unwrap(), v1 + 1);
    // The compacted files keep their statistics.
    let commit = Path::new(&data)
        .join("events")
        .join("_delta_log")
        .join(format!("{:020}.json", v1 + 1));
    let adds: Vec<serde_json::Value> = std::fs::read_to_string(commit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|a| a.get("add").cloned())
        .collect();
    assert!(!adds.is_empty());
    for add in adds {
        let stats: serde_json::Value =
            serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
        assert!(stats["minValues"]["event_timestamp"].is_string(), "{stats}");
        assert!(stats["maxValues"]["user_id"].is_string(), "{stats}");
    }

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
            .map(|r| r["value"]["count"].as_i64().unwrap())
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
    let refused = lambdaflow(&["lake", "vacuum", "--data-dir", &data, "--retain", "0s"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("--force") && err.trim().lines().count() == 1,
        "{err}"
    );
    let out = ok(&[
        "lake",
        "vacuum",
        "--data-dir",
        &data,
        "--retain",
        "0s",
        "--force",
    ]);
    // The events files compaction replaced, and the dead-letter table's.
    let deleted: u64 = out
        .lines()
        .last()
        .and_then(|l| l.split(" and ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(deleted >= files_before, "{out}");
    // Again: nothing is left to delete, and nothing is reported.
    let again = ok(&[
        "lake",
        "vacuum",
        "--data-dir",
        &data,
        "--retain",
        "0s",
        "--force",
    ]);
    assert!(
        again.contains("0 uncommitted and 0 expired files"),
        "{again}"
    );
    // The version before compaction has lost its files, and every command says so.
    for command in [
        vec!["lake", "info", "--as-of-version"],
        vec!["batch", "--as-of-version"],
    ] {
        let mut args = command.clone();
        let v1 = v1.to_string();
        args.extend_from_slice(&[v1.as_str(), "--data-dir", &data]);
        let out = lambdaflow(&args);
        assert_eq!(out.status.code(), Some(1), "{command:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("data files are gone") && err.trim().lines().count() == 1,
            "{command:?}: {err}"
        );
    }
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
        serde_json::json!([{"key": {"event_type": "purchase"}, "value": {"count": 1}}])
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

/// Every event's `_epoch`, by `event_id`, from the events table's Parquet files (all committed
/// after a run that finished).
fn epochs_of_events(data: &str) -> std::collections::HashMap<String, u64> {
    use arrow_array::{Array, Int64Array, StringArray};
    let mut out = std::collections::HashMap::new();
    for path in walk(&Path::new(data).join("events")) {
        if !path.to_string_lossy().ends_with(".parquet")
            || path.to_string_lossy().contains("_delta_log")
        {
            continue;
        }
        for batch in batches(&path) {
            let ids = batch.column_by_name("event_id").unwrap();
            let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
            let epochs = batch.column_by_name("_epoch").unwrap();
            let epochs = epochs.as_any().downcast_ref::<Int64Array>().unwrap();
            for i in 0..batch.num_rows() {
                assert!(!ids.is_null(i));
                out.insert(ids.value(i).to_owned(), epochs.value(i) as u64);
            }
        }
    }
    out
}

/// The first few rows in which two sets of views differ, short enough to read.
fn differences(
    a: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, serde_json::Value>>,
    b: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, serde_json::Value>>,
) -> String {
    let mut out = Vec::new();
    let empty = Default::default();
    for name in a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (x, y) = (a.get(name).unwrap_or(&empty), b.get(name).unwrap_or(&empty));
        for key in x
            .keys()
            .chain(y.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            if x.get(key) != y.get(key) {
                out.push(format!(
                    "{name} {key}: {:?} vs {:?}",
                    x.get(key),
                    y.get(key)
                ));
            }
        }
    }
    out.truncate(6);
    out.join("; ")
}

/// lambdaflow's commits in the events table's log, read from its JSON: (version, first epoch,
/// last epoch), oldest first.
fn commit_ranges(data: &str) -> Vec<(u64, u64, u64)> {
    let log = Path::new(data).join("events").join("_delta_log");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&log).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(version) = name
            .strip_suffix(".json")
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let meta = &value["commitInfo"]["lambdaflow"];
            if meta.is_object() {
                out.push((
                    version,
                    meta["first_epoch"].as_u64().unwrap(),
                    meta["epoch"].as_u64().unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// The commit invariant, for every version of a run on `workers` workers with many commits:
/// commits hold contiguous epoch ranges; `batch --as-of-version v`, `batch --as-of-epoch e` (v's
/// last epoch) and `lake info --as-of-version v` agree, and equal a plain recomputation over the
/// input's events of epochs up to e.
fn time_travel_agrees(workers: &str) {
    let d = Dirs::new();
    let input = d.generate("in.jsonl", 30_000, 11);
    let data = d.arg("data");
    run_with(&input, &data, workers, "1000", "1", &[]);
    let lines: Vec<Vec<u8>> = std::fs::read(&input)
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let epochs = epochs_of_events(&data);
    let commits = commit_ranges(&data);
    assert!(commits.len() >= 3, "{commits:?}");
    for pair in commits.windows(2) {
        assert_eq!(
            pair[1].1,
            pair[0].2 + 1,
            "overlapping or gapped commit ranges: {commits:?}"
        );
    }
    let count = |v: &serde_json::Value| -> u64 {
        v["views"]["events_by_type"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"]["count"].as_u64().unwrap())
            .sum()
    };
    for &(version, _, last) in &commits {
        let by_version = d.arg(&format!("v{version}.json"));
        let (v, e) = (version.to_string(), last.to_string());
        ok(&[
            "batch",
            "--data-dir",
            &data,
            "--as-of-version",
            &v,
            "--views-out",
            &by_version,
        ]);
        let by_version = views(Path::new(&by_version));
        let by_epoch = d.arg(&format!("e{last}.json"));
        ok(&[
            "batch",
            "--data-dir",
            &data,
            "--as-of-epoch",
            &e,
            "--views-out",
            &by_epoch,
        ]);
        let by_epoch = views(Path::new(&by_epoch));
        assert_eq!(by_version["as_of_epoch"], last, "version {version}");
        assert_eq!(by_epoch["as_of_epoch"], last, "epoch {last}");
        let table = info(&data, &["--as-of-version", &v]);
        assert_eq!(
            table["events"]["rows"].as_u64().unwrap(),
            count(&by_version),
            "version {version}"
        );
        // The valid input events of epochs up to `last`, recomputed plainly (dead letters
        // aside: the input does not say which epoch they fell in).
        let upto: Vec<Vec<u8>> = lines
            .iter()
            .filter(|l| {
                reference::classify(l, 1 << 20)
                    .is_ok_and(|event| epochs[event["event_id"].as_str().unwrap()] <= last)
            })
            .cloned()
            .collect();
        let mut want = reference::views(&upto, 1 << 20);
        want.remove("dead_letters_by_reason");
        for (what, got) in [("version", &by_version), ("epoch", &by_epoch)] {
            let mut got = reference::from_views_json(got);
            got.remove("dead_letters_by_reason");
            assert!(
                got == want,
                "as of {what}: version {version}, epoch {last} (commits {commits:?}): {}",
                differences(&got, &want)
            );
        }
        assert_eq!(
            by_version["views"]["dead_letters_by_reason"],
            by_epoch["views"]["dead_letters_by_reason"],
            "version {version}, epoch {last}"
        );
    }
}

#[test]
fn time_travel_agrees_with_itself_on_two_workers() {
    time_travel_agrees("2");
}

#[test]
fn time_travel_agrees_with_itself_on_four_workers() {
    time_travel_agrees("4");
}

/// Every `add` action carries Delta statistics that bound its file: `numRecords`, and per column
/// the least and greatest values (times in milliseconds, as Delta writes them) and the nulls.
#[test]
fn every_file_carries_delta_statistics_that_bound_it() {
    use arrow_array::{Array, StringArray, TimestampMicrosecondArray};
    let d = Dirs::new();
    let input = d.generate("in.jsonl", 20_000, 5);
    let data = d.arg("data");
    run_file(&input, &data, "2", &d.arg("run.json"));
    let log = Path::new(&data).join("events").join("_delta_log");
    let mut files = 0;
    for entry in std::fs::read_dir(&log).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            let Some(add) = action.get("add") else {
                continue;
            };
            files += 1;
            let stats: serde_json::Value =
                serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
            let path = Path::new(&data)
                .join("events")
                .join(add["path"].as_str().unwrap());
            let (mut rows, mut times, mut users, mut null_sources) = (0, Vec::new(), Vec::new(), 0);
            for batch in batches(&path) {
                rows += batch.num_rows();
                let t = batch.column_by_name("event_timestamp").unwrap();
                let t = t
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .unwrap();
                times.extend(t.values().iter().copied());
                let u = batch.column_by_name("user_id").unwrap();
                let u = u.as_any().downcast_ref::<StringArray>().unwrap();
                users.extend(u.iter().map(|v| v.unwrap().to_owned()));
                null_sources += batch.column_by_name("source").unwrap().null_count();
            }
            assert_eq!(stats["numRecords"].as_u64().unwrap(), rows as u64);
            let millis = |micros: i64| {
                chrono::DateTime::from_timestamp_millis(micros.div_euclid(1000))
                    .unwrap()
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string()
            };
            let (lo, hi) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
            assert_eq!(stats["minValues"]["event_timestamp"], millis(lo));
            assert_eq!(stats["maxValues"]["event_timestamp"], millis(hi));
            assert_eq!(
                stats["minValues"]["user_id"].as_str().unwrap(),
                users.iter().min().unwrap()
            );
            assert_eq!(
                stats["maxValues"]["user_id"].as_str().unwrap(),
                users.iter().max().unwrap()
            );
            assert_eq!(
                stats["nullCount"]["source"].as_u64().unwrap(),
                null_sources as u64
            );
            // Partition columns are not in the file, nor in its statistics.
            assert!(stats["minValues"].get("event_type").is_none());
        }
    }
    assert!(files > 4, "{files} files");
}

/// A running pipeline compacts partitions that gather small files, as `OPTIMIZE` commits
/// between its own, and the lake reads the same before and after.
#[test]
fn a_running_pipeline_compacts_small_files() {
    let d = Dirs::new();
    let input = d.generate("in.jsonl", 30_000, 8);
    let data = d.arg("data");
    let config = d.path("pipeline.toml");
    std::fs::write(&config, "[lake]\ncompact_files = 4\n").unwrap();
    let (config, views_out) = (config.to_str().unwrap(), d.arg("run.json"));
    run_with(
        &input,
        &data,
        "2",
        "100",
        "1",
        &["--config", config, "--views-out", &views_out],
    );
    // The log's commits, oldest first: whether each is a compaction, and the files it adds.
    let log = Path::new(&data).join("events").join("_delta_log");
    let mut versions: Vec<(u64, String)> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let version = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            (version, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    versions.sort();
    let compacts = |text: &str| text.contains("\"operation\":\"OPTIMIZE\"");
    let optimizes = versions.iter().filter(|(_, t)| compacts(t)).count();
    let commits = commit_ranges(&data).len();
    assert!(
        optimizes >= 1,
        "{optimizes} compactions in {commits} commits"
    );
    // Files added since the last compaction wait for the next one (a check every few commits).
    let last = versions.iter().rposition(|(_, t)| compacts(t)).unwrap();
    let waiting: u64 = versions[last + 1..]
        .iter()
        .map(|(_, t)| t.lines().filter(|l| l.starts_with("{\"add\"")).count() as u64)
        .sum();
    let lake = info(&data, &[]);
    let (files, partitions) = (
        lake["events"]["files"].as_u64().unwrap(),
        lake["events"]["partitions"].as_u64().unwrap(),
    );
    // After a compaction a partition holds fewer than `compact_files` (4) small files of a size
    // tier, and its merged files; then the files written since.
    assert!(
        files <= partitions * 3 * 2 + waiting,
        "{files} files in {partitions} partitions after {commits} commits, {waiting} added since \
         the last of {optimizes} compactions"
    );
    ok(&[
        "batch",
        "--data-dir",
        &data,
        "--views-out",
        &d.arg("batch.json"),
    ]);
    assert_eq!(
        views(Path::new(&d.arg("batch.json")))["views"],
        views(Path::new(&d.arg("run.json")))["views"]
    );
    let verified = ok(&["verify", "--data-dir", &data]);
    assert!(verified.starts_with("ok:"), "{verified}");
}

/// The built-in views (SQL views, here from a config that lists them) read their rows from the
/// typed events (no row is built per event): a resumed run replays the lake into them and equals
/// one whole run, and `batch` and `verify` recompute them from the lake.
#[test]
fn sql_views_over_the_typed_events_resume_batch_and_verify() {
    let d = Dirs::new();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/src/views/builtin.toml");
    let generated = |count: &str, out: &str, data: &str| {
        generated_run(&["--config", config], "2", "5", count, out, data)
    };
    let data = d.arg("data");
    generated("6000", &d.arg("first.json"), &data);
    generated("15000", &d.arg("second.json"), &data);
    generated("15000", &d.arg("whole.json"), &d.arg("whole"));
    let second = views(Path::new(&d.arg("second.json")));
    assert_eq!(
        second["views"],
        views(Path::new(&d.arg("whole.json")))["views"]
    );
    let users = &second["views"]["daily_active_users"];
    assert!(!users.as_array().unwrap().is_empty(), "{users}");

    ok(&[
        "batch",
        "--data-dir",
        &data,
        "--config",
        config,
        "--views-out",
        &d.arg("batch.json"),
    ]);
    let batch = views(Path::new(&d.arg("batch.json")));
    assert_eq!(batch["views"], second["views"]);
    let verified = ok(&["verify", "--data-dir", &data]);
    assert!(verified.starts_with("ok: 11 views equal"), "{verified}");
}
