//! Turning a stream of token bytes into text a client can be sent.
//!
//! Two problems live here, both independent of llama.cpp:
//! - a token is a byte string, and one UTF-8 character can be split across tokens, so bytes are
//!   held back until they form whole characters ([`Utf8Stream`]);
//! - a stop sequence can span tokens, so text that could still become a stop sequence is held back
//!   until it is known not to be one ([`StopScanner`]).

/// Incremental UTF-8 decoder: feeds bytes, returns the longest complete text available.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Adds `bytes` and returns every complete character now available. Invalid sequences become
    /// U+FFFD, as a lossy decoder would; an incomplete sequence at the end is kept for later.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(err) => {
                    let valid = err.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(
                        self.pending.get(..valid).unwrap_or_default(),
                    ));
                    match err.error_len() {
                        // Incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Flushes what is left at the end of a generation (an incomplete character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// Finds stop sequences in generated text and decides how much text is safe to send.
#[derive(Debug)]
pub struct StopScanner {
    stops: Vec<String>,
    text: String,
    sent: usize,
}

/// What the scanner says after new text arrives.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// Send this text (possibly empty) and continue.
    Continue(String),
    /// A stop sequence was found: send this text (the part before the stop) and finish.
    Stopped(String),
}

impl StopScanner {
    /// A scanner for the given stop sequences (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            text: String::new(),
            sent: 0,
        }
    }

    /// Adds generated text.
    pub fn push(&mut self, piece: &str) -> Scan {
        // A stop sequence can only start in the unsent region or overlap its start, so search a
        // window that begins far enough back to catch one spanning the boundary.
        let longest = self.stops.iter().map(String::len).max().unwrap_or(0);
        let search_from = floor_char_boundary(&self.text, self.sent.saturating_sub(longest));
        self.text.push_str(piece);
        let window = self.text.get(search_from..).unwrap_or_default();
        let found = self
            .stops
            .iter()
            .filter_map(|stop| window.find(stop.as_str()).map(|at| search_from + at))
            .min();
        if let Some(at) = found {
            let at = at.max(self.sent);
            let out = self.text.get(self.sent..at).unwrap_or_default().to_owned();
            self.sent = at;
            return Scan::Stopped(out);
        }
        // Hold back the longest suffix that is a prefix of some stop sequence.
        let unsent = self.text.get(self.sent..).unwrap_or_default();
        let mut hold = 0;
        for stop in &self.stops {
            // Proper prefixes of the stop sequence, at character boundaries.
            // (Only prefixes no longer than the unsent text can match its end.)
            for (len, _) in stop
                .char_indices()
                .skip(1)
                .take_while(|(len, _)| *len <= unsent.len())
            {
                if len > hold && unsent.ends_with(stop.get(..len).unwrap_or_default()) {
                    hold = len;
                }
            }
        }
        let until = self.text.len() - hold;
        let out = self
            .text
            .get(self.sent..until)
            .unwrap_or_default()
            .to_owned();
        self.sent = until;
        Scan::Continue(out)
    }

    /// The text held back at the end of a generation that stopped for another reason.
    pub fn finish(&mut self) -> String {
        let out = self.text.get(self.sent..).unwrap_or_default().to_owned();
        self.sent = self.text.len();
        out
    }
}

fn floor_char_boundary(s: &str, mut at: usize) -> usize {
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn utf8_split_across_tokens_is_joined() {
        let mut s = Utf8Stream::default();
        let bytes = "é🙂".as_bytes();
        let mut out = String::new();
        for b in bytes {
            out.push_str(&s.push(&[*b]));
        }
        out.push_str(&s.finish());
        assert_eq!(out, "é🙂");
    }

    #[test]
    fn invalid_utf8_becomes_replacement() {
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(&[b'a', 0xff, b'b']), "a\u{fffd}b");
        assert_eq!(s.push(&[0xe2, 0x82]), "");
        assert_eq!(s.finish(), "\u{fffd}");
    }

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut sc = StopScanner::new(&stops);
        let mut out = String::new();
        for p in pieces {
            match sc.push(p) {
                Scan::Continue(t) => out.push_str(&t),
                Scan::Stopped(t) => {
                    out.push_str(&t);
                    return (out, true);
                }
            }
        }
        out.push_str(&sc.finish());
        (out, false)
    }

    #[test]
    fn stop_inside_one_piece() {
        assert_eq!(run(&["END"], &["hello END world"]), ("hello ".into(), true));
    }

    #[test]
    fn stop_spanning_pieces_is_never_sent() {
        assert_eq!(
            run(&["END"], &["hello E", "N", "D more"]),
            ("hello ".into(), true)
        );
    }

    #[test]
    fn held_back_prefix_is_released_when_it_diverges() {
        assert_eq!(
            run(&["END"], &["a E", "Nx", " b"]),
            ("a ENx b".into(), false)
        );
    }

    #[test]
    fn no_stops_passes_everything() {
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(run(&["zz", "y"], &["xxyzz"]), ("xx".into(), true));
    }

    #[test]
    fn multibyte_stop() {
        assert_eq!(run(&["—"], &["a", "\u{2014}", "b"]), ("a".into(), true));
    }
}
