//! JSON-lines files, split into byte ranges so that every worker decodes a share.
//!
//! A file is cut into one range per worker; a line belongs to the range that holds its first
//! byte, so every line is read exactly once whatever the number of workers. Blank lines are
//! skipped; a `\r` before the `\n` is dropped.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{CHUNK_BYTES, Chunk, Poll, Source, SourceError};
use crate::event::Position;

/// Files smaller than this are not split: one worker reads each whole.
const SPLIT_MIN_BYTES: u64 = 256 * 1024;

/// Reads lines of at most `max` bytes from a `BufRead`, keeping at most `max + 1` bytes of a
/// longer line (enough for the decoder to call it `too_large`) and skipping the rest of it.
pub struct LineReader<R> {
    inner: R,
    offset: u64,
    max: usize,
}

impl<R: BufRead> LineReader<R> {
    /// Reads from `inner`, whose first byte is at `offset` of the input.
    pub fn new(inner: R, offset: u64, max: usize) -> Self {
        LineReader { inner, offset, max }
    }

    /// The offset of the next byte to read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Appends the next non-blank line to `chunk`, positioned by `position(line_start)`.
    /// Returns `false` at the end of the input.
    pub fn next_line(
        &mut self,
        chunk: &mut Chunk,
        position: impl Fn(u64) -> Position,
    ) -> std::io::Result<bool> {
        loop {
            let start = self.offset;
            let mut kept = 0usize;
            let mut begun = false;
            let mut last_byte = None;
            loop {
                let buf = self.inner.fill_buf()?;
                if buf.is_empty() {
                    if !begun {
                        return Ok(false);
                    }
                    break;
                }
                let (piece, consumed, done) = match memchr::memchr(b'\n', buf) {
                    Some(i) => (&buf[..i], i + 1, true),
                    None => (buf, buf.len(), false),
                };
                if !piece.is_empty() {
                    if !begun {
                        chunk.begin_record(position(start));
                        begun = true;
                    }
                    let room = (self.max + 1).saturating_sub(kept);
                    let take = piece.len().min(room);
                    chunk.extend_record(&piece[..take]);
                    kept += take;
                    last_byte = piece.last().copied();
                }
                self.inner.consume(consumed);
                self.offset += consumed as u64;
                if done {
                    break;
                }
            }
            if begun {
                if last_byte == Some(b'\r') && kept <= self.max {
                    chunk.trim_last_byte();
                }
                if chunk.last_record_is_blank() {
                    chunk.drop_last_record();
                    continue;
                }
                return Ok(true);
            }
        }
    }
}

impl<T: std::io::Read> LineReader<BufReader<T>> {
    /// Whether the reader's buffer is empty, so that the next read may block.
    pub fn is_drained(&self) -> bool {
        self.inner.buffer().is_empty()
    }
}

impl Chunk {
    fn trim_last_byte(&mut self) {
        if let Some(last) = self.records.last_mut()
            && last.1 > last.0
        {
            last.1 -= 1;
            self.bytes.truncate(last.1 as usize);
        }
    }

    fn last_record_is_blank(&self) -> bool {
        self.records.last().is_some_and(|&(s, e, _)| {
            self.bytes[s as usize..e as usize]
                .iter()
                .all(u8::is_ascii_whitespace)
        })
    }

    fn drop_last_record(&mut self) {
        if let Some((s, _, _)) = self.records.pop() {
            self.bytes.truncate(s as usize);
        }
    }
}

/// One byte range of one file.
struct Split {
    file: u32,
    path: PathBuf,
    start: u64,
    end: u64,
    /// Whether `start` is known to be the first byte of a line (a resumed position).
    exact: bool,
}

/// Worker `index`'s ranges of `paths`.
pub fn open_splits(
    paths: &[PathBuf],
    index: usize,
    peers: usize,
    max: usize,
    resume: Option<Position>,
) -> Result<Vec<Box<dyn Source>>, SourceError> {
    let mut splits = Vec::new();
    for (file, path) in paths.iter().enumerate() {
        let len = std::fs::metadata(path)
            .map_err(|e| io_error(path, e))?
            .len();
        if len < SPLIT_MIN_BYTES || peers == 1 {
            if file % peers == index {
                splits.push(Split {
                    file: file as u32,
                    path: path.clone(),
                    start: 0,
                    end: len,
                    exact: false,
                });
            }
        } else {
            let k = (index + peers - file % peers) % peers; // rotate so small tails spread out
            let start = len * k as u64 / peers as u64;
            let end = len * (k as u64 + 1) / peers as u64;
            splits.push(Split {
                file: file as u32,
                path: path.clone(),
                start,
                end,
                exact: false,
            });
        }
    }
    if let Some(Position::File { file, offset }) = resume {
        // Splits are in file order: those of earlier files are done, and the one of `file`
        // resumes at `offset`, the first byte of the next line to read.
        splits.retain(|s| s.file >= file);
        for split in splits.iter_mut().filter(|s| s.file == file) {
            if offset > split.start {
                split.start = offset;
                split.exact = true;
            }
        }
        splits.retain(|s| s.file > file || s.start < s.end);
    }
    Ok(vec![Box::new(FileSource {
        splits,
        current: None,
        max,
        finished: resume.unwrap_or(Position::File { file: 0, offset: 0 }),
    })])
}

fn io_error(path: &Path, source: std::io::Error) -> SourceError {
    SourceError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A worker's ranges of the input files, read one after the other.
pub struct FileSource {
    splits: Vec<Split>,
    current: Option<(u32, PathBuf, u64, LineReader<BufReader<File>>)>,
    max: usize,
    finished: Position,
}

impl FileSource {
    fn open_next(&mut self) -> Result<bool, SourceError> {
        if self.splits.is_empty() {
            return Ok(false);
        }
        let split = self.splits.remove(0);
        let mut file = File::open(&split.path).map_err(|e| io_error(&split.path, e))?;
        let mut start = split.start;
        if start > 0 && !split.exact {
            // The line holding byte `start - 1` belongs to the previous range: skip to its end.
            file.seek(SeekFrom::Start(start - 1))
                .map_err(|e| io_error(&split.path, e))?;
            let mut reader = BufReader::with_capacity(1 << 16, file);
            let mut skipped = Vec::new();
            let n = reader
                .read_until(b'\n', &mut skipped)
                .map_err(|e| io_error(&split.path, e))?;
            start = start - 1 + n as u64;
            let lines = LineReader::new(reader, start, self.max);
            self.current = Some((split.file, split.path, split.end, lines));
        } else {
            if start > 0 {
                file.seek(SeekFrom::Start(start))
                    .map_err(|e| io_error(&split.path, e))?;
            }
            let lines = LineReader::new(BufReader::with_capacity(1 << 18, file), start, self.max);
            self.current = Some((split.file, split.path, split.end, lines));
        }
        Ok(true)
    }
}

impl Source for FileSource {
    fn poll(&mut self, chunk: &mut Chunk, max_records: usize) -> Result<Poll, SourceError> {
        let mut read = 0;
        while read < max_records && chunk.byte_len() < CHUNK_BYTES {
            let Some((file, path, end, lines)) = &mut self.current else {
                if self.open_next()? {
                    continue;
                }
                return Ok(if read > 0 {
                    Poll::Ready
                } else {
                    Poll::Exhausted
                });
            };
            let file = *file;
            if lines.offset() >= *end
                || !lines
                    .next_line(chunk, |offset| Position::File { file, offset })
                    .map_err(|e| io_error(path, e))?
            {
                self.finished = Position::File {
                    file,
                    offset: lines.offset(),
                };
                self.current = None;
                continue;
            }
            read += 1;
        }
        Ok(Poll::Ready)
    }

    fn positions(&self, out: &mut Vec<Position>) {
        out.push(match &self.current {
            Some((file, _, _, lines)) => Position::File {
                file: *file,
                offset: lines.offset(),
            },
            None => self.finished,
        });
    }
}

/// The JSON-lines files a path names: the file itself, or a directory's regular files (not
/// hidden ones), sorted by name.
pub fn expand(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        std::fs::metadata(path)?;
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if entry.file_type()?.is_file() && !hidden {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(paths: &[PathBuf], peers: usize, max: usize) -> Vec<(Vec<u8>, Position)> {
        let mut out = Vec::new();
        for index in 0..peers {
            for mut source in open_splits(paths, index, peers, max, None).unwrap() {
                let mut chunk = Chunk::default();
                while source.poll(&mut chunk, 7).unwrap() == Poll::Ready {}
                out.extend(chunk.iter().map(|(b, p)| (b.to_vec(), p)));
            }
        }
        out.sort_by_key(|(_, p)| *p);
        out
    }

    #[test]
    fn every_line_is_read_once_whatever_the_number_of_workers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jsonl");
        let mut f = File::create(&path).unwrap();
        let mut expected = Vec::new();
        let mut offset = 0u64;
        for i in 0..40_000 {
            let line = format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 13));
            expected.push((
                line.clone().into_bytes(),
                Position::File { file: 0, offset },
            ));
            let terminator = if i % 5 == 0 { "\r\n" } else { "\n" };
            write!(f, "{line}{terminator}").unwrap();
            offset += (line.len() + terminator.len()) as u64;
            if i % 1000 == 0 {
                writeln!(f, "   ").unwrap(); // blank lines are skipped
                offset += 4;
            }
        }
        drop(f);
        assert!(std::fs::metadata(&path).unwrap().len() > SPLIT_MIN_BYTES * 3);
        for peers in [1, 2, 3, 4] {
            assert_eq!(
                read_all(std::slice::from_ref(&path), peers, 1 << 20),
                expected,
                "{peers} workers"
            );
        }
    }

    #[test]
    fn an_overlong_line_keeps_only_a_prefix_and_the_next_line_is_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.jsonl");
        std::fs::write(&path, format!("{}\n{{\"ok\":1}}\n", "y".repeat(100_000))).unwrap();
        let got = read_all(&[path], 1, 10);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.len(), 11);
        assert_eq!(
            got[1],
            (
                b"{\"ok\":1}".to_vec(),
                Position::File {
                    file: 0,
                    offset: 100_001
                }
            )
        );
    }
}
