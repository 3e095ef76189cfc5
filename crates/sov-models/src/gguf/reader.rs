//! A bounds-checked little-endian reader: every read is checked against the file
//! length first, so no count or length from the file can make us read past the end
//! or allocate more than the file could possibly hold.

use std::io::{self, Read, Seek, SeekFrom};

use super::GgufError;

/// Skips up to this many bytes by reading through the buffer rather than seeking.
const SKIP_BY_READ: u64 = 64 * 1024;

pub(crate) struct Reader<R> {
    inner: R,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Reader<R> {
    pub(crate) fn new(inner: R, len: u64) -> Self {
        Self { inner, pos: 0, len }
    }

    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    pub(crate) fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// Fails with `Truncated` unless `n` more bytes exist.
    pub(crate) fn ensure(&self, n: u64, what: &'static str) -> Result<(), GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated { what });
        }
        Ok(())
    }

    fn fill(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), GgufError> {
        self.ensure(buf.len() as u64, what)?;
        self.inner.read_exact(buf).map_err(|e| io_err(e, what))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Reads a length-prefixed string of at most `max` bytes into `out`.
    pub(crate) fn string_into(
        &mut self,
        out: &mut Vec<u8>,
        max: u64,
        what: &'static str,
    ) -> Result<(), GgufError> {
        let n = self.u64(what)?;
        self.ensure(n, what)?;
        if n > max {
            return Err(GgufError::Malformed {
                reason: format!("{what} is {n} bytes long, at most {max} are allowed"),
            });
        }
        out.clear();
        // `n <= max`, a small constant, so this allocation is bounded.
        out.resize(usize::try_from(n).map_err(|_| too_big(what))?, 0);
        self.fill(out, what)
    }

    /// Skips `n` bytes after checking they exist.
    pub(crate) fn skip(&mut self, n: u64, what: &'static str) -> Result<(), GgufError> {
        self.ensure(n, what)?;
        if n <= SKIP_BY_READ {
            let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())
                .map_err(|e| io_err(e, what))?;
            if copied != n {
                return Err(GgufError::Truncated { what });
            }
        } else {
            let delta = i64::try_from(n).map_err(|_| too_big(what))?;
            self.inner
                .seek(SeekFrom::Current(delta))
                .map_err(|e| io_err(e, what))?;
        }
        self.pos += n;
        Ok(())
    }
}

fn too_big(what: &'static str) -> GgufError {
    GgufError::Malformed {
        reason: format!("{what} does not fit in memory"),
    }
}

fn io_err(e: io::Error, what: &'static str) -> GgufError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        // The file shrank under us: treat it like any other truncation.
        GgufError::Truncated { what }
    } else {
        GgufError::Io(e)
    }
}
