//! Where a lake's files live: a local directory, or an object store named by a URL
//! (`s3://bucket/path`, through `deltalake`'s own AWS support).
//!
//! A location is a [`Path`] either way: a local one, or the URL's text, which `join` extends
//! with `/` as it does a directory. The few operations the lake needs besides the Delta log
//! (reading a data file, putting a finished one in place, listing, deleting, small state
//! files) go through this module, which picks the file system or the object store. On an object
//! store a data file is written to a local staging directory first and uploaded whole when it
//! is finished: an object appears complete or not at all, so there is nothing to sync and no
//! torn file to repair.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use deltalake::{ObjectStore, Path as ObjectPath};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use parquet::file::reader::{ChunkReader, Length};

use super::LakeError;

/// An object store location: the store for its bucket, and the key under it.
struct Remote {
    store: Arc<dyn ObjectStore>,
    key: ObjectPath,
}

/// Whether `location` names an object store rather than a local directory.
pub fn is_remote(location: &Path) -> bool {
    remote_url(location).is_some()
}

/// The URL of an object store location: any `scheme://` but `file://`.
fn remote_url(location: &Path) -> Option<url::Url> {
    let text = location.to_str()?;
    let (scheme, _) = text.split_once("://")?;
    if scheme.len() < 2 || scheme == "file" {
        return None;
    }
    url::Url::parse(text).ok()
}

/// Fails, saying why, unless `location` is a local directory or an object store this build
/// can reach: `s3://` (and `s3a://`) with the `s3` feature.
pub fn check_supported(location: &Path) -> Result<(), String> {
    let Some(url) = remote_url(location) else {
        return Ok(());
    };
    let s3 = matches!(url.scheme(), "s3" | "s3a");
    if s3 && cfg!(feature = "s3") && !url.authority().is_empty() {
        return Ok(());
    }
    Err(if !s3 {
        format!(
            "{}: lakes are kept in a local directory or on S3 (s3://bucket/path), not on {}://",
            location.display(),
            url.scheme()
        )
    } else if url.authority().is_empty() {
        format!("{}: name a bucket (s3://bucket/path)", location.display())
    } else {
        format!(
            "{}: this build of lambdaflow has no S3 support (it was built without the `s3` \
             feature)",
            location.display()
        )
    })
}

/// The URL of a location, for `deltalake`: the object store's, or the local directory's.
pub fn url_of(location: &Path) -> Result<url::Url, LakeError> {
    if let Some(mut url) = remote_url(location) {
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        return Ok(url);
    }
    let absolute = std::path::absolute(location).map_err(|e| LakeError::io(location, e))?;
    url::Url::from_directory_path(&absolute).map_err(|()| {
        LakeError::Other(format!(
            "{} is not a usable directory path",
            location.display()
        ))
    })
}

/// The options given to `deltalake`'s object stores: every `AWS_*` environment variable (the
/// endpoint, region, keys, `AWS_ALLOW_HTTP` for a local server), as the AWS tools read them.
pub fn storage_options() -> HashMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect()
}

/// The runtime every object store request runs on: one for the process, with its own threads,
/// so that a store's connections outlive the short-lived runtimes the lake's callers block on.
pub fn io_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lambdaflow-io")
            .enable_all()
            .build()
            .expect("the object store runtime starts")
    })
}

/// A `deltalake` table builder for the table at `root`, with the storage options and the I/O
/// runtime an object store needs.
fn table_builder(root: &Path) -> Result<deltalake::DeltaTableBuilder, LakeError> {
    let url = url_of(root)?;
    let builder = deltalake::DeltaTableBuilder::from_url(url).map_err(|e| remote_error(root, e))?;
    Ok(if is_remote(root) {
        builder
            .with_storage_options(storage_options())
            .with_io_runtime(deltalake::logstore::IORuntime::RT(
                io_runtime().handle().clone(),
            ))
    } else {
        builder
    })
}

/// The `deltalake` table at `root`, made but not loaded.
///
/// On an object store, making a table makes its store, and the AWS SDK may then look up the
/// region and credentials over the network (the instance metadata service, a container's
/// credentials endpoint). `deltalake` drives that lookup with the runtime it is called from;
/// from inside a current-thread runtime's `block_on`, as the lake's callers block, that
/// runtime is never driven and the lookup waits forever. So the table is made outside any
/// runtime.
pub fn table(root: &Path) -> Result<deltalake::DeltaTable, LakeError> {
    let builder = table_builder(root)?;
    outside_runtime(move || builder.build()).map_err(|e| remote_error(root, e))
}

/// `f`'s result, computed with no Tokio runtime entered: on this thread when it has none, else
/// on a thread of its own.
fn outside_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

fn remote_error(location: &Path, e: impl std::fmt::Display) -> LakeError {
    let message = super::table::plain_message(&e.to_string());
    let hint = if message.contains("loading credentials") {
        " (give the keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in \
         AWS_PROFILE)"
    } else {
        ""
    };
    LakeError::Other(format!("{}: {message}{hint}", location.display()))
}

/// The store of `location`'s bucket (one per bucket, kept for the process) and its key.
fn remote(location: &Path) -> Result<Option<Remote>, LakeError> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let Some(url) = remote_url(location) else {
        return Ok(None);
    };
    let bucket = format!("{}://{}/", url.scheme(), url.authority());
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let store = match stores.get(&bucket) {
        Some(store) => store.clone(),
        None => {
            let root = PathBuf::from(&bucket);
            let builder = table_builder(&root)?;
            let log_store = outside_runtime(move || builder.build_storage())
                .map_err(|e| remote_error(location, e))?;
            let store = log_store.root_object_store(None);
            stores.insert(bucket, store.clone());
            store
        }
    };
    let key = ObjectPath::from_url_path(url.path()).map_err(|e| remote_error(location, e))?;
    Ok(Some(Remote { store, key }))
}

fn block_on<F: std::future::Future + Send + 'static>(future: F) -> F::Output
where
    F::Output: Send + 'static,
{
    let handle = io_runtime().spawn(future);
    futures::executor::block_on(handle).expect("an object store request does not panic")
}

fn not_found(location: &Path) -> LakeError {
    LakeError::io(
        location,
        std::io::Error::new(std::io::ErrorKind::NotFound, "no such object"),
    )
}

/// The whole content of the file or object at `location`.
pub fn read(location: &Path) -> Result<Bytes, LakeError> {
    match remote(location)? {
        None => std::fs::read(location)
            .map(Bytes::from)
            .map_err(|e| LakeError::io(location, e)),
        Some(Remote { store, key }) => block_on(async move {
            let got = store.get(&key).await?;
            got.bytes().await
        })
        .map_err(|e| match e {
            deltalake::ObjectStoreError::NotFound { .. } => not_found(location),
            e => remote_error(location, e),
        }),
    }
}

/// The text at `location`; `None` when there is no such file or object.
pub fn read_text(location: &Path) -> Result<Option<String>, LakeError> {
    match read(location) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(LakeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `location` whole: a reader sees the old content or the new, never part.
pub fn write(location: &Path, bytes: Vec<u8>) -> Result<(), LakeError> {
    match remote(location)? {
        None => {
            if let Some(parent) = location.parent() {
                std::fs::create_dir_all(parent).map_err(|e| LakeError::io(parent, e))?;
            }
            let name = location
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = location.with_file_name(format!(".{name}.tmp"));
            std::fs::write(&tmp, &bytes).map_err(|e| LakeError::io(&tmp, e))?;
            std::fs::rename(&tmp, location).map_err(|e| LakeError::io(location, e))
        }
        Some(Remote { store, key }) => {
            block_on(async move { store.put(&key, bytes.into()).await.map(|_| ()) })
                .map_err(|e| remote_error(location, e))
        }
    }
}

/// Where a file bound for `location` is written before it is finished: beside it on a local
/// disk, in a staging directory of the machine's temporary directory for an object store.
pub fn staging(location: &Path) -> PathBuf {
    match remote_url(location) {
        None => location.to_path_buf(),
        Some(url) => {
            let mut dir = std::env::temp_dir().join("lambdaflow-staging");
            dir.push(url.authority());
            for segment in url.path().split('/').filter(|s| !s.is_empty()) {
                dir.push(segment);
            }
            dir
        }
    }
}

/// Puts the finished local file `from` at `to`: a rename on a local disk (both on it), an
/// upload of the whole file to an object store, after which the local file is removed.
/// Returns its size.
pub fn put_file(from: &Path, to: &Path) -> Result<u64, LakeError> {
    match remote(to)? {
        None => {
            std::fs::rename(from, to).map_err(|e| LakeError::io(to, e))?;
            Ok(std::fs::metadata(to)
                .map_err(|e| LakeError::io(to, e))?
                .len())
        }
        Some(Remote { store, key }) => {
            let bytes = std::fs::read(from).map_err(|e| LakeError::io(from, e))?;
            let size = bytes.len() as u64;
            block_on(async move { store.put(&key, bytes.into()).await.map(|_| ()) })
                .map_err(|e| remote_error(to, e))?;
            std::fs::remove_file(from).map_err(|e| LakeError::io(from, e))?;
            Ok(size)
        }
    }
}

/// A Parquet file to read: a local file, an object read whole, or an object of which only the
/// ranges asked for are fetched (for a footer).
pub enum Source {
    /// A local file.
    File(std::fs::File),
    /// An object's bytes.
    Bytes(Bytes),
    /// An object of `size` bytes, read by ranges.
    Ranged {
        /// Its location, for errors.
        location: PathBuf,
        /// Its size.
        size: u64,
    },
}

/// Opens the file or object at `location` to read all of it.
pub fn open(location: &Path) -> Result<Source, LakeError> {
    if is_remote(location) {
        return read(location).map(Source::Bytes);
    }
    std::fs::File::open(location)
        .map(Source::File)
        .map_err(|e| LakeError::io(location, e))
}

/// Opens the file or object at `location`, `size` bytes, to read a few parts of it (a Parquet
/// footer): only those are fetched from an object store.
pub fn open_ranged(location: &Path, size: u64) -> Result<Source, LakeError> {
    if is_remote(location) {
        return Ok(Source::Ranged {
            location: location.to_path_buf(),
            size,
        });
    }
    open(location)
}

/// The bytes `range` of the object at `location`.
fn read_range(location: &Path, range: std::ops::Range<u64>) -> Result<Bytes, LakeError> {
    let Some(Remote { store, key }) = remote(location)? else {
        return Err(LakeError::Other(format!(
            "{} is not on an object store",
            location.display()
        )));
    };
    block_on(async move { store.get_range(&key, range).await })
        .map_err(|e| remote_error(location, e))
}

impl Length for Source {
    fn len(&self) -> u64 {
        match self {
            Source::File(file) => file.len(),
            Source::Bytes(bytes) => bytes.len() as u64,
            Source::Ranged { size, .. } => *size,
        }
    }
}

impl ChunkReader for Source {
    type T = Box<dyn std::io::Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(match self {
            Source::File(file) => Box::new(file.get_read(start)?),
            Source::Bytes(bytes) => Box::new(bytes.get_read(start)?),
            Source::Ranged { size, .. } => {
                let rest = usize::try_from(size.saturating_sub(start)).unwrap_or(usize::MAX);
                Box::new(std::io::Cursor::new(self.get_bytes(start, rest)?))
            }
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            Source::File(file) => file.get_bytes(start, length),
            Source::Bytes(bytes) => bytes.get_bytes(start, length),
            Source::Ranged { location, .. } => read_range(location, start..start + length as u64)
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e))),
        }
    }
}

/// A file or object found by [`list`].
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its location.
    pub location: PathBuf,
    /// Its path relative to the directory listed, with `/` between parts.
    pub relative: String,
    /// When it was last written, when known.
    pub modified: Option<SystemTime>,
}

/// Every file under `dir`, at any depth, but none under a directory whose name starts with `_`
/// below `dir` (a table's `_delta_log`). A missing directory holds nothing.
pub fn list(dir: &Path) -> Result<Vec<Entry>, LakeError> {
    let mut out = Vec::new();
    match remote(dir)? {
        None => walk(dir, "", &mut out).map_err(|e| LakeError::io(dir, e))?,
        Some(Remote { store, key }) => {
            let metas = block_on(async move {
                store
                    .list(Some(&key))
                    .try_collect::<Vec<deltalake::ObjectMeta>>()
                    .await
                    .map(|metas| (key, metas))
            });
            let (key, metas) = metas.map_err(|e| remote_error(dir, e))?;
            let prefix = format!("{}/", key.as_ref());
            for meta in metas {
                let full = meta.location.as_ref();
                let relative = full.strip_prefix(&prefix).unwrap_or(full);
                if relative
                    .split('/')
                    .rev()
                    .skip(1)
                    .any(|d| d.starts_with('_'))
                {
                    continue;
                }
                out.push(Entry {
                    location: dir.join(relative),
                    relative: relative.to_string(),
                    modified: Some(meta.last_modified.into()),
                });
            }
        }
    }
    out.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(out)
}

fn walk(dir: &Path, relative: &str, out: &mut Vec<Entry>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let below = if relative.is_empty() {
            name.clone()
        } else {
            format!("{relative}/{name}")
        };
        let ty = entry.file_type()?;
        if ty.is_dir() {
            if !name.starts_with('_') {
                walk(&entry.path(), &below, out)?;
            }
        } else if ty.is_file() {
            out.push(Entry {
                location: entry.path(),
                relative: below,
                modified: entry.metadata().and_then(|m| m.modified()).ok(),
            });
        }
    }
    Ok(())
}

/// Whether anything is under the object store prefix `dir` (its first page of objects only is
/// asked for, however many there are).
pub fn holds_any(dir: &Path) -> Result<bool, LakeError> {
    match remote(dir)? {
        None => Ok(!list(dir)?.is_empty()),
        Some(Remote { store, key }) => {
            block_on(async move { store.list(Some(&key)).try_next().await.map(|o| o.is_some()) })
                .map_err(|e| remote_error(dir, e))
        }
    }
}

/// Deletes the file or object at `location`; one that is already gone is no error.
pub fn delete(location: &Path) -> Result<(), LakeError> {
    match remote(location)? {
        None => match std::fs::remove_file(location) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LakeError::io(location, e)),
            _ => Ok(()),
        },
        Some(Remote { store, key }) => match block_on(async move { store.delete(&key).await }) {
            Ok(()) | Err(deltalake::ObjectStoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote_error(location, e)),
        },
    }
}

/// Whether a file or object is at `location`.
pub fn exists(location: &Path) -> Result<bool, LakeError> {
    match remote(location)? {
        None => Ok(location.exists()),
        Some(Remote { store, key }) => match block_on(async move { store.head(&key).await }) {
            Ok(_) => Ok(true),
            Err(deltalake::ObjectStoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(remote_error(location, e)),
        },
    }
}

/// When the file or object at `location` was last written, if it exists.
pub fn modified(location: &Path) -> Result<Option<SystemTime>, LakeError> {
    match remote(location)? {
        None => Ok(std::fs::metadata(location).and_then(|m| m.modified()).ok()),
        Some(Remote { store, key }) => match block_on(async move { store.head(&key).await }) {
            Ok(meta) => Ok(Some(meta.last_modified.into())),
            Err(deltalake::ObjectStoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote_error(location, e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_object_stores_and_paths_name_directories() {
        assert!(is_remote(Path::new("s3://bucket/lake")));
        assert!(is_remote(&Path::new("s3://bucket/lake").join("events")));
        assert!(!is_remote(Path::new("lambdaflow-data")));
        assert!(!is_remote(Path::new("/tmp/x:y")));
        assert!(!is_remote(Path::new("file:///tmp/lake")));
        assert_eq!(
            url_of(&Path::new("s3://bucket/lake").join("events"))
                .unwrap()
                .as_str(),
            "s3://bucket/lake/events/"
        );
        assert_eq!(
            staging(Path::new("s3://bucket/a/b")),
            std::env::temp_dir().join("lambdaflow-staging/bucket/a/b")
        );
    }

    #[test]
    fn local_files_are_written_whole_listed_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/state.json");
        write(&path, b"{}".to_vec()).unwrap();
        assert_eq!(read_text(&path).unwrap().as_deref(), Some("{}"));
        write(&dir.path().join("_log/x"), b"1".to_vec()).unwrap();
        let names: Vec<String> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|e| e.relative)
            .collect();
        assert_eq!(names, ["a/b/state.json"]);
        assert!(exists(&path).unwrap());
        delete(&path).unwrap();
        delete(&path).unwrap();
        assert!(!exists(&path).unwrap());
        assert_eq!(read_text(&path).unwrap(), None);
    }
}
