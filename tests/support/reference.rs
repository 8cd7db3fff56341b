//! An independent, deliberately plain recomputation of the built-in views from a JSON-lines
//! file: serde_json `Value`s, chrono for timestamps, BTreeMaps for groups. It shares no code with
//! the engine, so agreement between the two means something.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Classifies a line as the engine must: `Ok(event)` or `Err(reason code)`.
pub fn classify(line: &[u8], max_bytes: usize) -> Result<Value, &'static str> {
    if line.len() > max_bytes {
        return Err("too_large");
    }
    let text = std::str::from_utf8(line).map_err(|_| "not_utf8")?;
    let value: Value = serde_json::from_str(text).map_err(|_| "not_json")?;
    let object = value.as_object().ok_or("wrong_type")?;
    let strings = [
        "event_id",
        "event_type",
        "user_id",
        "product",
        "country",
        "source",
        "session_id",
        "page",
    ];
    for (key, v) in object {
        if v.is_null() {
            continue;
        }
        if strings.contains(&key.as_str()) && !v.is_string() {
            return Err("wrong_type");
        }
        if key == "event_timestamp" {
            let s = v.as_str().ok_or("wrong_type")?;
            DateTime::parse_from_rfc3339(s).map_err(|_| "bad_timestamp")?;
        }
        if key == "price" {
            cents(v).ok_or("wrong_type")?;
        }
    }
    for required in [
        "event_id",
        "event_type",
        "user_id",
        "event_timestamp",
        "country",
    ] {
        if object.get(required).is_none_or(Value::is_null) {
            return Err("missing_field");
        }
    }
    Ok(value)
}

/// A price as cents: a JSON number or numeric string with at most two decimals.
fn cents(v: &Value) -> Option<i64> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let f: f64 = text.parse().ok()?;
    let c = (f * 100.0).round();
    ((c / 100.0 - f).abs() < 1e-9).then_some(c as i64)
}

fn money(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        c.unsigned_abs() / 100,
        c.unsigned_abs() % 100
    )
}

fn average(sum: i64, count: i64) -> String {
    // Round half away from zero, in plain arithmetic on cents.
    let q = sum as f64 / count as f64;
    let r = if q >= 0.0 {
        (q + 0.5).floor()
    } else {
        (q - 0.5).ceil()
    };
    money(r as i64)
}

/// The views of the valid lines of `lines`, and the dead letters per reason, as the JSON the
/// engine writes with `--views-out` (without `as_of_epoch`), as maps from key to value.
pub fn views(lines: &[Vec<u8>], max_bytes: usize) -> BTreeMap<String, BTreeMap<String, Value>> {
    let mut by_type: BTreeMap<String, i64> = BTreeMap::new();
    let mut per_minute: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut revenue: BTreeMap<Option<String>, (i64, i64)> = BTreeMap::new();
    let mut prices: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut active: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut buyers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut product_revenue: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut by_source: BTreeMap<(Option<String>, String), i64> = BTreeMap::new();
    let mut by_country: BTreeMap<(String, Option<String>), i64> = BTreeMap::new();
    let mut dead: BTreeMap<String, i64> = BTreeMap::new();

    for line in lines {
        let mut line = line.as_slice();
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let e = match classify(line, max_bytes) {
            Ok(e) => e,
            Err(reason) => {
                *dead.entry(reason.to_owned()).or_default() += 1;
                continue;
            }
        };
        let s = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_owned);
        let t = s("event_type").unwrap();
        let user = s("user_id").unwrap();
        let at: DateTime<Utc> = DateTime::parse_from_rfc3339(&s("event_timestamp").unwrap())
            .unwrap()
            .with_timezone(&Utc);
        let day = at.format("%Y-%m-%d").to_string();
        let price = e.get("price").filter(|v| !v.is_null()).and_then(cents);

        *by_type.entry(t.clone()).or_default() += 1;
        *per_minute
            .entry((at.format("%Y-%m-%dT%H:%M:00Z").to_string(), t.clone()))
            .or_default() += 1;
        if let Some(p) = price {
            let x = prices.entry(t.clone()).or_default();
            x.0 += p;
            x.1 += 1;
            if t == "purchase" {
                let r = revenue.entry(s("country")).or_default();
                r.0 += p;
                r.1 += 1;
                if let Some(product) = s("product") {
                    let x = product_revenue.entry(product).or_default();
                    x.0 += p;
                    x.1 += 1;
                }
            }
        }
        active.entry(day.clone()).or_default().insert(user.clone());
        if t == "purchase" {
            buyers.entry(day).or_default().insert(user);
        }
        *by_country.entry((t.clone(), s("country"))).or_default() += 1;
        *by_source.entry((s("source"), t)).or_default() += 1;
    }

    let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let mut put = |view: &str, key: Value, value: Value| {
        out.entry(view.to_owned())
            .or_default()
            .insert(key.to_string(), value);
    };
    for (t, n) in by_type {
        put(
            "events_by_type",
            json!({"event_type": t}),
            json!({"count": n}),
        );
    }
    for ((m, t), n) in per_minute {
        put(
            "events_per_minute",
            json!({"minute": m, "event_type": t}),
            json!({"count": n}),
        );
    }
    for (c, (r, o)) in revenue {
        put(
            "revenue_by_country",
            json!({"country": c}),
            json!({"revenue": money(r), "orders": o}),
        );
    }
    for (t, (sum, n)) in prices {
        put(
            "avg_price_by_type",
            json!({"event_type": t}),
            json!({"avg_price": average(sum, n), "total": money(sum), "count": n}),
        );
    }
    for (d, users) in &active {
        put(
            "daily_active_users",
            json!({"date": d}),
            json!({"users": users.len()}),
        );
        let p = buyers.get(d).map_or(0, BTreeSet::len);
        put(
            "conversion_rate",
            json!({"date": d}),
            json!({"purchasing_users": p, "active_users": users.len(), "rate": p as f64 / users.len() as f64}),
        );
    }
    for (p, (r, o)) in &product_revenue {
        put(
            "revenue_by_product",
            json!({"product": p}),
            json!({"revenue": money(*r), "orders": o}),
        );
    }
    for ((t, c), n) in by_country {
        put(
            "events_by_country",
            json!({"event_type": t, "country": c}),
            json!({"count": n}),
        );
    }
    let mut ranked: Vec<(String, i64)> = product_revenue
        .into_iter()
        .map(|(p, (r, _))| (p, r))
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (rank, (p, r)) in ranked.into_iter().take(10).enumerate() {
        put(
            "top_products",
            json!({"product": p}),
            json!({"rank": rank + 1, "revenue": money(r)}),
        );
    }
    for ((src, t), n) in by_source {
        put(
            "events_by_source",
            json!({"source": src, "event_type": t}),
            json!({"count": n}),
        );
    }
    for (r, n) in dead {
        put(
            "dead_letters_by_reason",
            json!({"reason": r}),
            json!({"count": n}),
        );
    }
    out
}

/// The engine's `--views-out` JSON in the same shape as [`views`]; empty views are left out.
pub fn from_views_json(json: &Value) -> BTreeMap<String, BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for (name, rows) in json["views"].as_object().expect("views object") {
        let rows: BTreeMap<String, Value> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["key"].to_string(), r["value"].clone()))
            .collect();
        if !rows.is_empty() {
            out.insert(name.clone(), rows);
        }
    }
    out
}
