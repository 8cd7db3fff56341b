//! The view store readers see, its snapshots, and the operator that publishes into it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use differential_dataflow::VecCollection;
use serde_json::{Map, Value as Json, json};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Operator;

use crate::event::Symbols;

use super::*;

/// The views as of one closed epoch.
#[derive(Clone, Debug, Default)]
pub struct ViewState {
    /// The last closed epoch the views reflect; `None` before the first one closes.
    pub as_of: Option<u64>,
    /// Rows per view, by [`Catalog`] index.
    pub tables: Vec<ViewTable>,
}

/// A view's rows by key: a persistent map, so that a snapshot is a copy of a few pointers and
/// applying an epoch's changes afterwards copies only the paths it changes. Copying each view's
/// `BTreeMap` had held worker 0, and the epoch it was applying, for 9 ms once the views held a
/// few tens of thousands of rows (open loop, 11 s into `lambdaflow bench`), and that grows with
/// the views.
pub type ViewTable = imbl::OrdMap<Vec<Datum>, Vec<Datum>>;

/// The views readers see: updated by worker 0 once per closed epoch, read by anyone.
#[derive(Debug)]
pub struct ViewStore {
    symbols: Arc<Symbols>,
    catalog: Arc<Catalog>,
    /// The views kept, by catalog index.
    enabled: Vec<usize>,
    state: RwLock<ViewState>,
    snapshots: std::sync::OnceLock<Snapshots>,
    /// The thread that writes snapshots, started with the first one, and when it was asked last.
    writer: Mutex<Option<SnapshotWriter>>,
}

/// Snapshots at commit boundaries are at least this far apart (the last one is always written).
const SNAPSHOT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Snapshots are taken under the lock on worker 0 (a copy of each view's root) and written as
/// JSON on their own thread.
#[derive(Debug)]
struct SnapshotWriter {
    states: std::sync::mpsc::Sender<ViewState>,
    thread: std::thread::JoinHandle<()>,
    last: std::time::Instant,
}

/// Where the store writes itself at commit boundaries (so that `verify` can compare the live
/// views with the lake), and how often.
#[derive(Debug, Clone)]
pub struct Snapshots {
    /// The directory of `views-EPOCH.json` files.
    pub dir: std::path::PathBuf,
    /// A snapshot at every epoch `e` with `(e + 1) % every == 0`.
    pub every: u64,
    /// How many to keep.
    pub keep: usize,
}

impl ViewStore {
    /// An empty store for the `sql` views and the `custom` (Rust) views.
    pub fn new(symbols: Arc<Symbols>, sql: Vec<sql::SqlView>, custom: custom::Registry) -> Self {
        let catalog = Arc::new(Catalog::new(sql, custom));
        let enabled = (0..catalog.len()).collect();
        let state = ViewState {
            as_of: None,
            tables: vec![ViewTable::new(); catalog.len()],
        };
        ViewStore {
            symbols,
            catalog,
            enabled,
            state: RwLock::new(state),
            snapshots: std::sync::OnceLock::new(),
            writer: Mutex::new(None),
        }
    }

    /// Writes a snapshot at every commit boundary from now on.
    pub fn set_snapshots(&self, snapshots: Snapshots) {
        let _ = self.snapshots.set(snapshots);
    }

    /// The commit-boundary interval of snapshots, if they are on.
    fn snapshot_every(&self) -> Option<u64> {
        self.snapshots.get().map(|s| s.every)
    }

    /// Snapshots the views as of their current epoch: they are copied now and written to the
    /// snapshot directory on the snapshot thread (atomically, then the oldest beyond the limit
    /// are dropped). Unless `last`, nothing is done if the previous snapshot is less than 10 s
    /// old: the views grow with the data, and `verify` needs one snapshot, not every one.
    /// Failing to write one is logged, never fatal.
    pub fn write_snapshot(&self, last: bool) {
        let Some(snapshots) = self.snapshots.get() else {
            return;
        };
        if !last
            && let Some(w) = self
                .writer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
            && w.last.elapsed() < SNAPSHOT_EVERY
        {
            return;
        }
        // Every table's root; the snapshot file holds the enabled views only.
        let state = self.read(ViewState::clone);
        if state.as_of.is_none() {
            return;
        }
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let writer = writer.get_or_insert_with(|| {
            let (states, receive) = std::sync::mpsc::channel::<ViewState>();
            let (symbols, enabled) = (self.symbols.clone(), self.enabled.clone());
            let catalog = self.catalog.clone();
            let snapshots = snapshots.clone();
            let thread = std::thread::Builder::new()
                .name("view-snapshots".into())
                .spawn(move || {
                    // Every one, in order: `verify` needs one at an epoch the lake committed.
                    while let Ok(state) = receive.recv() {
                        write_snapshot_file(&snapshots, &symbols, &catalog, &enabled, &state);
                    }
                })
                .expect("spawning the snapshot thread");
            SnapshotWriter {
                states,
                thread,
                last: std::time::Instant::now(),
            }
        });
        writer.last = std::time::Instant::now();
        let _ = writer.states.send(state);
    }

    /// Waits until every snapshot asked for is on disk.
    pub fn finish_snapshots(&self) {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            drop(writer.states);
            let _ = writer.thread.join();
        }
    }

    /// Applies the consolidated changes of every epoch up to and including `epoch`.
    fn apply(&self, epoch: u64, changes: &mut Vec<(ViewRow, isize)>) {
        differential_dataflow::consolidation::consolidate(changes);
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        // Retractions first, so that a key's new value replaces its old one.
        for ((view, key, _), diff) in changes.iter() {
            if *diff < 0 {
                state.tables[*view as usize].remove(key);
            }
        }
        for ((view, key, value), diff) in changes.drain(..) {
            if diff > 0 {
                if diff != 1 {
                    tracing::warn!(view, diff, "view row with multiplicity other than one");
                }
                state.tables[view as usize].insert(key, value);
            }
        }
        state.as_of = Some(state.as_of.map_or(epoch, |e| e.max(epoch)));
    }

    /// Marks every epoch up to `epoch` as applied (they had no changes, or the run is over).
    pub(crate) fn close_through(&self, epoch: u64) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.as_of = Some(state.as_of.map_or(epoch, |e| e.max(epoch)));
    }

    /// The views this store keeps.
    pub fn enabled(&self) -> &[usize] {
        &self.enabled
    }

    /// Every view a row can belong to.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The kept view called `name`.
    pub fn view_named(&self, name: &str) -> Option<usize> {
        self.catalog
            .index_of(name)
            .filter(|v| self.enabled.contains(v))
    }

    /// Reads the state under the lock.
    pub fn read<R>(&self, f: impl FnOnce(&ViewState) -> R) -> R {
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The symbol table behind the `Sym` data.
    pub fn symbols(&self) -> &Arc<Symbols> {
        &self.symbols
    }

    /// One view's rows as `{"key": ..., "value": ...}` JSON objects, in the view's order (its
    /// `ORDER BY` for a top-n, key otherwise).
    pub fn rows_json(&self, state: &ViewState, view: usize) -> Vec<Json> {
        rows_json(&self.symbols, &self.catalog, state, view)
    }

    /// Every enabled view, as `{"as_of_epoch": N, "views": {"name": [rows]}}`.
    pub fn to_json(&self) -> Json {
        self.read(|state| state_json(&self.symbols, &self.catalog, &self.enabled, state))
    }
}

/// One row as `{"key": {...}, "value": {...}}`: objects of the view's key and value columns by
/// name, for SQL and Rust views alike.
fn row_json(
    symbols: &Symbols,
    catalog: &Catalog,
    view: usize,
    key: &[Datum],
    value: &[Datum],
) -> Json {
    let object = |names: &mut dyn Iterator<Item = &str>, data: &[Datum]| -> Json {
        Json::Object(
            names
                .zip(data)
                .map(|(n, d)| (n.to_string(), d.to_json(symbols)))
                .collect(),
        )
    };
    if let Some(v) = catalog.sql(view) {
        let names = |key: bool| {
            v.plan
                .columns
                .iter()
                .filter(move |c| c.key == key)
                .map(|c| c.name.as_str())
        };
        return json!({"key": object(&mut names(true), key), "value": object(&mut names(false), value)});
    }
    let (k, v) = catalog
        .custom(view)
        .map_or((Vec::new(), Vec::new()), |v| (v.key(), v.value()));
    json!({
        "key": object(&mut k.iter().map(|c| c.name.as_str()), key),
        "value": object(&mut v.iter().map(|c| c.name.as_str()), value),
    })
}

fn rows_json(symbols: &Symbols, catalog: &Catalog, state: &ViewState, view: usize) -> Vec<Json> {
    let mut rows: Vec<Json> = state.tables[view]
        .iter()
        .map(|(k, v)| row_json(symbols, catalog, view, k, v))
        .collect();
    let places: Option<Vec<_>> = catalog.sql(view).and_then(|v| {
        let table = state.tables[view].iter();
        table
            .map(|(k, val)| sql::flow::listing_place(&v.plan, k, val, symbols))
            .collect()
    });
    if let Some(places) = places {
        // A top-n in its ORDER BY order.
        let mut placed: Vec<_> = places.into_iter().zip(rows).collect();
        placed.sort_by(|a, b| a.0.cmp(&b.0));
        rows = placed.into_iter().map(|(_, row)| row).collect();
    } else {
        // The key's text once per row, not once per comparison.
        rows.sort_by_cached_key(|row| row["key"].to_string());
    }
    rows
}

fn state_json(symbols: &Symbols, catalog: &Catalog, enabled: &[usize], state: &ViewState) -> Json {
    let views: Map<String, Json> = enabled
        .iter()
        .map(|&v| {
            (
                catalog.name(v).to_owned(),
                Json::Array(rows_json(symbols, catalog, state, v)),
            )
        })
        .collect();
    json!({"as_of_epoch": state.as_of, "views": views})
}

/// Writes `state` as [`ViewStore::to_json`] would give it, one row at a time (rows in key
/// order): a snapshot grows with the views, and a whole JSON tree of them cost several times
/// the views' own memory.
fn write_state_json(
    symbols: &Symbols,
    catalog: &Catalog,
    enabled: &[usize],
    state: &ViewState,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    write!(out, "{{\"as_of_epoch\":{},\"views\":{{", json!(state.as_of))?;
    for (i, &view) in enabled.iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        write!(out, "{comma}{}:[", json!(catalog.name(view)))?;
        for (j, (key, value)) in state.tables[view].iter().enumerate() {
            if j > 0 {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, &row_json(symbols, catalog, view, key, value))?;
        }
        out.write_all(b"]")?;
    }
    out.write_all(b"}}")
}

fn write_snapshot_file(
    snapshots: &Snapshots,
    symbols: &Symbols,
    catalog: &Catalog,
    enabled: &[usize],
    state: &ViewState,
) {
    let Some(epoch) = state.as_of else {
        return;
    };
    let result = (|| -> Result<(), String> {
        use crate::lake::store;
        let path = snapshots.dir.join(format!("views-{epoch}.json"));
        let mut out = Vec::new();
        write_state_json(symbols, catalog, enabled, state, &mut out).map_err(|e| e.to_string())?;
        store::write(&path, out).map_err(|e| e.to_string())?;
        let all = crate::lake::snapshots_in(&snapshots.dir);
        let excess = all.len().saturating_sub(snapshots.keep.max(1));
        for (_, old) in all.into_iter().take(excess) {
            store::delete(&old).map_err(|e| e.to_string())?;
        }
        Ok(())
    })();
    // Warn once: a full disk would otherwise repeat it at every boundary.
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let Err(e) = result
        && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        tracing::warn!(
            "writing a view snapshot to {}: {e}",
            snapshots.dir.display()
        );
    }
}

/// Gathers every view change on worker 0 and applies it to `store` once its epoch has closed.
/// Only the worker with `index == 0` writes; the others' share of the operator sees no data.
pub fn publish(rows: VecCollection<'_, u64, ViewRow>, store: Arc<ViewStore>, index: usize) {
    // Changes of epochs that are still open, by epoch.
    let mut pending: BTreeMap<u64, Vec<(ViewRow, isize)>> = BTreeMap::new();
    // Whether the views changed since the last snapshot.
    let mut changed = false;
    rows.inner.sink(
        Exchange::new(|_| 0),
        "PublishViews",
        move |(input, frontier)| {
            input.for_each(|_cap, data| {
                for (row, time, diff) in data.drain(..) {
                    pending.entry(time).or_default().push((row, diff));
                }
            });
            if index != 0 {
                return;
            }
            // Every epoch before the frontier is closed, with or without changes.
            let through = frontier
                .frontier()
                .first()
                .map(|f| f.saturating_sub(1))
                .filter(|_| !frontier.less_equal(&0));
            let through = match (through, frontier.is_empty()) {
                (Some(t), _) => t,
                (None, true) => pending.last_key_value().map_or(0, |(e, _)| *e),
                (None, false) => return,
            };
            // Apply in order, stopping at each commit boundary to snapshot the views as of it.
            let every = store.snapshot_every();
            // The last commit boundary before epoch `e`.
            let boundary_before =
                |e: u64| every.and_then(|k| (e / k.max(1) * k.max(1)).checked_sub(1));
            let mut snapped = store.read(|s| s.as_of);
            let mut closed = Vec::new();
            while let Some(entry) = pending.first_entry() {
                if *entry.key() > through {
                    break;
                }
                let (epoch, mut changes) = entry.remove_entry();
                if let Some(b) = boundary_before(epoch)
                    && snapped.is_none_or(|a| a < b)
                {
                    if changed {
                        store.apply(b, &mut closed);
                        store.write_snapshot(false);
                        changed = false;
                    }
                    snapped = Some(b);
                }
                changed |= !changes.is_empty();
                closed.append(&mut changes);
            }
            if let Some(b) = boundary_before(through + 1)
                && snapped.is_none_or(|a| a < b)
                && changed
            {
                store.apply(b, &mut closed);
                store.write_snapshot(false);
                changed = false;
            }
            store.apply(through, &mut closed);
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_written_row_by_row_holds_what_to_json_gives() {
        let symbols = Arc::new(Symbols::default());
        let views = builtin::ecommerce();
        let at = |name: &str| views.iter().position(|v| v.name == name).unwrap() as u8;
        let row = |view: &str, key, value| (at(view), key, value);
        let store = ViewStore::new(symbols.clone(), views.clone(), custom::Registry::default());
        let (view, page) = (
            symbols.intern("page_view"),
            symbols.intern("caf\u{e9} \"x\""),
        );
        let mut changes = vec![
            (
                row(
                    "events_per_minute",
                    vec![Datum::Timestamp(29_000_000 * 60_000_000), Datum::Sym(view)],
                    vec![Datum::Int(3)],
                ),
                1,
            ),
            (
                row(
                    "top_products",
                    vec![Datum::Sym(page)],
                    vec![Datum::Int(1), Datum::Money(1999)],
                ),
                1,
            ),
            (
                row(
                    "events_by_type",
                    vec![Datum::Sym(view)],
                    vec![Datum::Int(7)],
                ),
                1,
            ),
            (
                row(
                    "events_by_type",
                    vec![Datum::Sym(page)],
                    vec![Datum::Int(2)],
                ),
                1,
            ),
        ];
        store.apply(4, &mut changes);
        let mut written = Vec::new();
        store
            .read(|state| {
                write_state_json(
                    &symbols,
                    store.catalog(),
                    store.enabled(),
                    state,
                    &mut written,
                )
            })
            .unwrap();
        let mut written: Json = serde_json::from_slice(&written).unwrap();
        let mut expected = store.to_json();
        // Row order is the store's key order in the file and the key's text in the API.
        for json in [&mut written, &mut expected] {
            for rows in json["views"].as_object_mut().unwrap().values_mut() {
                rows.as_array_mut().unwrap().sort_by_key(|r| r.to_string());
            }
        }
        assert_eq!(written, expected);
        assert_eq!(written["as_of_epoch"], 4);
        assert_eq!(
            written["views"]["events_by_type"].as_array().unwrap().len(),
            2
        );
    }
}
