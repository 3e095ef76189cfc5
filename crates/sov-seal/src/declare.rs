//! `[seal]` in `sov.toml`: what the boundary lets through, declared in one place.
//!
//! ```toml
//! [seal]
//! offline = false
//! listen = []
//! read_only = []
//! outbound = [
//!   { host = "10.0.0.7", port = 8080, purpose = "upstream engine for the cardiology specialist" },
//! ]
//! ```
//!
//! [`open`] and [`close`] edit a configuration text (keeping its comments and layout) and
//! return the new text; they refuse duplicates, unknown destinations and malformed input with
//! a named error, and never return a text that does not parse back to a valid declaration.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

/// The `[seal]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Declaration {
    /// Run `sov serve` in a network namespace with only loopback: nothing leaves, whatever is
    /// declared below (for fully offline deployments).
    pub offline: bool,
    /// Addresses `sov serve` may listen on. Empty: only the one it is started with.
    pub listen: Vec<SocketAddr>,
    /// Paths outside the home the process may read (the home itself, with its models and
    /// configuration, is always covered).
    pub read_only: Vec<PathBuf>,
    /// Permitted outbound destinations. Empty (the default): none.
    pub outbound: Vec<Destination>,
}

/// One permitted outbound destination.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// An IP address (IPv6 without brackets), in its usual form; no DNS names.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// Why the path is open, in the owner's words (shown in the seal report and recorded).
    pub purpose: String,
}

/// Why a declaration or an edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The configuration text does not parse.
    #[error("the configuration is not valid TOML: {0}")]
    Toml(String),
    /// `[seal]` breaks a rule.
    #[error("[seal] is not valid: {0}")]
    Invalid(String),
    /// A destination written as `host:port` does not parse.
    #[error("`{0}` is not a destination: write HOST:PORT, e.g. 10.0.0.7:8080 or [::1]:8080")]
    BadDestination(String),
    /// `open` of a destination that is already declared.
    #[error("{0} is already declared open")]
    AlreadyOpen(String),
    /// `close` of a destination that is not declared.
    #[error("{0} is not declared open (see `sov seal status`)")]
    NotOpen(String),
}

/// Longest purpose text accepted.
pub const MAX_PURPOSE: usize = 200;

impl Destination {
    /// Parses `host:port` (`[v6]:port` for IPv6) with `purpose`.
    pub fn parse(s: &str, purpose: &str) -> Result<Self, SealError> {
        let bad = || SealError::BadDestination(s.to_owned());
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
            (h, p)
        } else {
            let (h, p) = s.rsplit_once(':').ok_or_else(bad)?;
            if h.contains(':') {
                return Err(bad());
            }
            (h, p)
        };
        let port: u16 = port.parse().map_err(|_| bad())?;
        // The usual written form of the address (lower case, shortest IPv6), so that one
        // destination has one spelling in the file, the record and the report.
        let host = host
            .parse::<IpAddr>()
            .map_or_else(|_| host.to_owned(), |ip| ip.to_string());
        let d = Self {
            host,
            port,
            purpose: purpose.trim().to_owned(),
        };
        d.check()?;
        Ok(d)
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn check(&self) -> Result<(), SealError> {
        let invalid = |why: &str| SealError::Invalid(format!("outbound {}: {why}", self.address()));
        // An IP address, not a name: Sovereign makes no DNS lookup (a lookup is itself a
        // message out, and its answer could move the destination).
        match self.host.parse::<IpAddr>() {
            Err(_) => {
                return Err(invalid(
                    "the host must be an IP address (Sovereign makes no DNS lookup)",
                ));
            }
            Ok(ip) if ip.to_string() != self.host => {
                return Err(invalid(&format!("write the address as {ip}")));
            }
            Ok(ip) if ip.is_unspecified() || ip.is_multicast() => {
                return Err(invalid("not a destination address"));
            }
            Ok(_) => {}
        }
        if self.port == 0 {
            return Err(invalid("port 0 is not a destination"));
        }
        if self.purpose.trim().is_empty() {
            return Err(invalid("every open path needs a purpose"));
        }
        if self.purpose.chars().count() > MAX_PURPOSE || self.purpose.chars().any(char::is_control)
        {
            return Err(invalid(&format!(
                "the purpose must be one line of at most {MAX_PURPOSE} characters"
            )));
        }
        Ok(())
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.address(), self.purpose)
    }
}

impl Declaration {
    /// The declared destination `addr` is, if it is one (never when offline). An IPv4 address
    /// and its IPv4-mapped IPv6 form are the same destination.
    pub fn destination(&self, addr: SocketAddr) -> Option<&Destination> {
        if self.offline {
            return None;
        }
        self.outbound.iter().find(|d| {
            d.port == addr.port()
                && d.host
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.to_canonical() == addr.ip().to_canonical())
        })
    }

    /// Checks the rules serde cannot: destinations well formed, each declared once; paths
    /// absolute; listen addresses each once.
    pub fn validate(&self) -> Result<(), SealError> {
        let mut seen = BTreeSet::new();
        for d in &self.outbound {
            d.check()?;
            if !seen.insert((d.host.as_str(), d.port)) {
                return Err(SealError::Invalid(format!(
                    "outbound {} is declared twice",
                    d.address()
                )));
            }
        }
        for p in &self.read_only {
            if !p.is_absolute() {
                return Err(SealError::Invalid(format!(
                    "read_only path `{}` must be absolute",
                    p.display()
                )));
            }
        }
        if self.offline && !self.outbound.is_empty() {
            return Err(SealError::Invalid(
                "offline = true leaves no path out, yet outbound destinations are declared: close them or set offline = false".into(),
            ));
        }
        let mut listen = BTreeSet::new();
        for a in &self.listen {
            if !listen.insert(a) {
                return Err(SealError::Invalid(format!("listen {a} is declared twice")));
            }
        }
        Ok(())
    }

    /// Whether `host:port` is a declared destination.
    pub fn permits(&self, host: &str, port: u16) -> Option<&Destination> {
        let host = host
            .parse::<IpAddr>()
            .map_or_else(|_| host.to_ascii_lowercase(), |ip| ip.to_string());
        self.outbound
            .iter()
            .find(|d| d.port == port && d.host == host)
    }
}

/// The declaration in a whole configuration text (`[seal]` absent: the default, nothing open).
pub fn read(config_text: &str) -> Result<Declaration, SealError> {
    #[derive(Deserialize)]
    struct Only {
        #[serde(default)]
        seal: Declaration,
    }
    // Other sections are the caller's to check; only `[seal]` is read here.
    let doc: DocumentMut = config_text
        .parse()
        .map_err(|e: toml_edit::TomlError| SealError::Toml(e.to_string()))?;
    let seal_text = match doc.get("seal") {
        None => String::new(),
        Some(item) => {
            let mut only = DocumentMut::new();
            only.insert("seal", item.clone());
            only.to_string()
        }
    };
    let only: Only = toml::from_str(&seal_text).map_err(|e| SealError::Invalid(e.to_string()))?;
    only.seal.validate()?;
    Ok(only.seal)
}

/// `sov seal open`: `config_text` with `dest` added to `[seal] outbound`.
pub fn open(config_text: &str, dest: &Destination) -> Result<String, SealError> {
    dest.check()?;
    let current = read(config_text)?;
    if current.permits(&dest.host, dest.port).is_some() {
        return Err(SealError::AlreadyOpen(dest.address()));
    }
    let mut doc = parse(config_text)?;
    let seal = seal_table(&mut doc)?;
    let mut entry = InlineTable::new();
    entry.insert("host", Value::from(dest.host.as_str()));
    entry.insert("port", Value::from(i64::from(dest.port)));
    entry.insert("purpose", Value::from(dest.purpose.as_str()));
    match seal.get_mut("outbound") {
        None => {
            let mut array = Array::new();
            array.push(entry);
            seal.insert("outbound", Item::Value(Value::Array(array)));
        }
        Some(Item::Value(Value::Array(array))) => array.push(entry),
        Some(Item::ArrayOfTables(tables)) => tables.push(entry.into_table()),
        Some(_) => {
            return Err(SealError::Invalid(
                "outbound must be a list of {host, port, purpose}".into(),
            ));
        }
    }
    finish(doc)
}

/// `sov seal close`: `config_text` without the destination `host:port`.
pub fn close(config_text: &str, host: &str, port: u16) -> Result<String, SealError> {
    let host = host
        .parse::<IpAddr>()
        .map_or_else(|_| host.to_ascii_lowercase(), |ip| ip.to_string());
    let mut doc = parse(config_text)?;
    let address = Destination {
        host: host.clone(),
        port,
        purpose: String::new(),
    }
    .address();
    let matches = |host_v: Option<&str>, port_v: Option<i64>| {
        host_v.is_some_and(|h| h.eq_ignore_ascii_case(&host)) && port_v == Some(i64::from(port))
    };
    let removed = match doc
        .get_mut("seal")
        .and_then(Item::as_table_like_mut)
        .and_then(|t| t.get_mut("outbound"))
    {
        Some(Item::Value(Value::Array(array))) => {
            let before = array.len();
            array.retain(|v| {
                let t = v.as_inline_table();
                !matches(
                    t.and_then(|t| t.get("host")).and_then(Value::as_str),
                    t.and_then(|t| t.get("port")).and_then(Value::as_integer),
                )
            });
            before != array.len()
        }
        Some(Item::ArrayOfTables(tables)) => {
            let before = tables.len();
            tables.retain(|t| {
                !matches(
                    t.get("host").and_then(Item::as_str),
                    t.get("port").and_then(Item::as_integer),
                )
            });
            before != tables.len()
        }
        _ => false,
    };
    if !removed {
        return Err(SealError::NotOpen(address));
    }
    finish(doc)
}

fn parse(text: &str) -> Result<DocumentMut, SealError> {
    text.parse()
        .map_err(|e: toml_edit::TomlError| SealError::Toml(e.to_string()))
}

fn seal_table(doc: &mut DocumentMut) -> Result<&mut Table, SealError> {
    if doc.get("seal").is_none() {
        doc.insert("seal", Item::Table(Table::new()));
    }
    doc.get_mut("seal")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| SealError::Invalid("`seal` must be a table ([seal])".into()))
}

/// The edited text, checked to read back as a valid declaration.
fn finish(doc: DocumentMut) -> Result<String, SealError> {
    let text = doc.to_string();
    read(&text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CONFIG: &str = "# Sovereign configuration.\n[server]\nlisten = \"127.0.0.1:8787\"\n\n[seal]\n# Nothing leaves by default.\noffline = false\noutbound = []\n";

    #[test]
    fn by_default_nothing_is_open() {
        assert_eq!(read("").unwrap(), Declaration::default());
        assert!(read(CONFIG).unwrap().outbound.is_empty());
    }

    #[test]
    fn open_and_close_keep_the_comments_and_read_back() {
        let dest = Destination::parse("10.0.0.7:8080", "upstream engine").unwrap();
        let opened = open(CONFIG, &dest).unwrap();
        assert!(opened.contains("# Nothing leaves by default."), "{opened}");
        assert!(opened.contains("# Sovereign configuration."), "{opened}");
        let decl = read(&opened).unwrap();
        assert_eq!(decl.outbound, vec![dest.clone()]);
        assert_eq!(
            open(&opened, &dest),
            Err(SealError::AlreadyOpen("10.0.0.7:8080".into()))
        );
        let v6 = Destination::parse("[FD00::1]:443", "witness").unwrap();
        assert_eq!(v6.host, "fd00::1");
        let both = open(&opened, &v6).unwrap();
        assert_eq!(read(&both).unwrap().outbound.len(), 2);
        let closed = close(&both, "10.0.0.7", 8080).unwrap();
        assert_eq!(read(&closed).unwrap().outbound, vec![v6]);
        assert!(closed.contains("# Nothing leaves by default."));
        assert_eq!(
            close(&closed, "10.0.0.7", 8080),
            Err(SealError::NotOpen("10.0.0.7:8080".into()))
        );
        // A config without [seal] gets one.
        let fresh = open("[server]\n", &dest).unwrap();
        assert_eq!(read(&fresh).unwrap().outbound, vec![dest]);
    }

    #[test]
    fn the_array_of_tables_form_is_edited_too() {
        let text = "[[seal.outbound]]\nhost = \"fd00::a\"\nport = 443\npurpose = \"x\"\n";
        let dest = Destination::parse("10.1.1.1:443", "y").unwrap();
        let both = open(text, &dest).unwrap();
        assert_eq!(read(&both).unwrap().outbound.len(), 2);
        let one = close(&both, "FD00:0::A", 443).unwrap();
        assert_eq!(read(&one).unwrap().outbound, vec![dest]);
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        for (s, purpose) in [
            ("10.0.0.7", "p"),
            ("10.0.0.7:0", "p"),
            ("10.0.0.7:99999", "p"),
            ("::1:80", "p"),
            ("bad host:80", "p"),
            ("10.0.0.7:80", " "),
            ("10.0.0.7:80", "two\nlines"),
            ("a.example:80", "names are refused: no DNS lookup"),
            ("0.0.0.0:80", "p"),
        ] {
            assert!(Destination::parse(s, purpose).is_err(), "{s:?} {purpose:?}");
        }
        let long = "x".repeat(MAX_PURPOSE + 1);
        assert!(Destination::parse("10.0.0.7:80", &long).is_err());
        for text in [
            "[seal]\nunknown = 1\n",
            "[seal]\noutbound = [{ host = \"10.0.0.1\", port = 1, purpose = \"p\" }, { host = \"10.0.0.1\", port = 1, purpose = \"q\" }]\n",
            "[seal]\noutbound = [{ host = \"10.0.0.1\", port = 1 }]\n",
            "[seal]\noutbound = [{ host = \"FD00::1\", port = 1, purpose = \"p\" }]\n",
            "[seal]\noutbound = [{ host = \"a.example\", port = 1, purpose = \"p\" }]\n",
            "[seal]\noffline = true\noutbound = [{ host = \"10.0.0.1\", port = 1, purpose = \"p\" }]\n",
            "[seal]\nread_only = [\"relative/path\"]\n",
            "[seal]\noutbound = \"everything\"\n",
            "[seal\n",
        ] {
            assert!(read(text).is_err(), "{text}");
        }
        // An edit of an invalid text is refused, not written.
        let dest = Destination::parse("10.0.0.7:80", "p").unwrap();
        assert!(open("[seal]\nunknown = 1\n", &dest).is_err());
        // Offline leaves no path to open.
        assert!(open("[seal]\noffline = true\n", &dest).is_err());
    }
}
