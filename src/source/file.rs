//! JSON-lines files, split into byte ranges so that every worker decodes a share.
//!
//! The files are cut into one share of their bytes per worker; a line belongs to the range that
//! holds its first byte, so every line is read exactly once whatever the number of workers. A
//! worker's position is what it has left to read, as byte ranges: a run with another number of
//! workers (or processes) resumes a lake by sharing out what every worker had left, as Flink
//! reassigns splits on restore. Blank lines are skipped; a `\r` before the `\n` is dropped.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{CHUNK_BYTES, Chunk, Poll, Source, SourceError};
use crate::event::Position;

/// Files smaller than this were not split by earlier builds: one worker read each whole.
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
}

/// A range of a file still to read: `(file, start, end)`. A range reads every line whose first
/// byte it holds, to the line's end, so a line is read once however ranges are cut: a range
/// that starts inside a line leaves that line to the range before it.
type Range = (u32, u64, u64);

/// The ranges of `paths` still to read after a lake commit whose positions are `resume` (one
/// list per worker of the run that wrote it, in any number), or all of them. Positions written
/// by an earlier build, one [`Position::File`] per worker in the ranges that build gave it, are
/// read too.
fn remaining(
    paths: &[PathBuf],
    resume: Option<&[Vec<Position>]>,
) -> Result<Vec<Range>, SourceError> {
    let lens = paths
        .iter()
        .map(|path| {
            Ok(std::fs::metadata(path)
                .map_err(|e| io_error(path, e))?
                .len())
        })
        .collect::<Result<Vec<u64>, SourceError>>()?;
    let whole = || {
        (0..)
            .zip(lens.iter())
            .map(|(f, &len)| (f, 0, len))
            .collect()
    };
    let Some(resume) = resume else {
        return Ok(whole());
    };
    let mut ranges: Vec<Range> = if resume
        .iter()
        .flatten()
        .any(|p| matches!(p, Position::File { .. }))
    {
        let peers = resume.len();
        (0..peers)
            .flat_map(|k| earlier_build_ranges(&lens, k, peers, resume[k].first().copied()))
            .collect()
    } else {
        resume
            .iter()
            .flatten()
            .filter_map(|p| match *p {
                Position::FileRange { file, start, end } => Some((file, start, end)),
                _ => None,
            })
            .collect()
    };
    ranges.retain(|&(_, start, end)| start < end);
    ranges.sort_unstable();
    Ok(ranges)
}

/// What worker `index` of `peers` had left to read, as an earlier build cut the files (a file
/// into one range per worker, a small file whole to one) and resumed them (at the position
/// `at`, with the files before it done).
fn earlier_build_ranges(
    lens: &[u64],
    index: usize,
    peers: usize,
    at: Option<Position>,
) -> Vec<Range> {
    let mut ranges = Vec::new();
    for (file, &len) in (0u32..).zip(lens) {
        let f = file as usize;
        if len < SPLIT_MIN_BYTES || peers == 1 {
            if f % peers == index {
                ranges.push((file, 0, len));
            }
        } else {
            let k = ((index + peers - f % peers) % peers) as u64;
            ranges.push((file, len * k / peers as u64, len * (k + 1) / peers as u64));
        }
    }
    if let Some(Position::File { file, offset }) = at {
        ranges.retain(|r| r.0 >= file);
        for r in ranges.iter_mut().filter(|r| r.0 == file) {
            r.1 = r.1.max(offset);
        }
    }
    ranges
}

/// Worker `index` of `peers`'s share of `ranges`: the `index`-th of `peers` equal parts of
/// their bytes, in order. Every worker computes every share alike, so the shares cover the
/// ranges exactly once.
fn share(ranges: &[Range], index: usize, peers: usize) -> Vec<Range> {
    let total: u64 = ranges.iter().map(|&(_, s, e)| e - s).sum();
    let part = |i: usize| (u128::from(total) * i as u128 / peers as u128) as u64;
    let (from, to) = (part(index), part(index + 1));
    let mut at = 0;
    let mut mine = Vec::new();
    for &(file, start, end) in ranges {
        let len = end - start;
        let (a, b) = (at.max(from), (at + len).min(to));
        if a < b {
            mine.push((file, start + (a - at), start + (b - at)));
        }
        at += len;
    }
    mine
}

/// The positions every worker of `peers` starts from: its share of what `resume` (a lake
/// commit's positions) left of `paths`, or of all of them.
pub fn regroup(
    paths: &[PathBuf],
    resume: Option<&[Vec<Position>]>,
    peers: usize,
) -> Result<Vec<Vec<Position>>, SourceError> {
    let ranges = remaining(paths, resume)?;
    Ok((0..peers)
        .map(|index| {
            share(&ranges, index, peers)
                .into_iter()
                .map(|(file, start, end)| Position::FileRange { file, start, end })
                .collect()
        })
        .collect())
}

/// Worker `index`'s ranges of `paths`: from `resume`, its positions as [`regroup`] gave them,
/// or its share of the whole files.
pub fn open_splits(
    paths: &[PathBuf],
    index: usize,
    peers: usize,
    max: usize,
    resume: Option<&[Position]>,
) -> Result<Vec<Box<dyn Source>>, SourceError> {
    let ranges = match resume {
        Some(positions) => positions
            .iter()
            .filter_map(|p| match *p {
                Position::FileRange { file, start, end } => Some((file, start, end)),
                _ => None,
            })
            .collect(),
        None => share(&remaining(paths, None)?, index, peers),
    };
    let splits = ranges
        .into_iter()
        .filter_map(|(file, start, end)| {
            let path = paths.get(file as usize)?.clone();
            Some(Split {
                file,
                path,
                start,
                end,
            })
        })
        .collect();
    Ok(vec![Box::new(FileSource {
        splits,
        current: None,
        max,
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
}

impl FileSource {
    fn open_next(&mut self) -> Result<bool, SourceError> {
        if self.splits.is_empty() {
            return Ok(false);
        }
        let split = self.splits.remove(0);
        let mut file = File::open(&split.path).map_err(|e| io_error(&split.path, e))?;
        let mut start = split.start;
        if start > 0 {
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
                self.current = None;
                continue;
            }
            read += 1;
        }
        Ok(Poll::Ready)
    }

    /// What is left to read: the rest of the current range, then the ranges not begun.
    fn positions(&self, out: &mut Vec<Position>) {
        if let Some((file, _, end, lines)) = &self.current
            && lines.offset() < *end
        {
            out.push(Position::FileRange {
                file: *file,
                start: lines.offset(),
                end: *end,
            });
        }
        out.extend(self.splits.iter().map(|s| Position::FileRange {
            file: s.file,
            start: s.start,
            end: s.end,
        }));
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
