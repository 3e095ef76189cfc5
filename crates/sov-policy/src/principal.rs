//! Principals (people and services), their roles and attributes, and the rules for their names.

use std::collections::{BTreeMap, BTreeSet};

/// A person or a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    /// A person.
    Person,
    /// A program acting on its own behalf.
    Service,
}

impl PrincipalKind {
    /// `person` or `service`.
    pub fn name(self) -> &'static str {
        match self {
            PrincipalKind::Person => "person",
            PrincipalKind::Service => "service",
        }
    }

    /// Parses `person` or `service`.
    pub fn parse(s: &str) -> Result<Self, InvalidName> {
        match s {
            "person" => Ok(PrincipalKind::Person),
            "service" => Ok(PrincipalKind::Service),
            _ => Err(InvalidName::new("kind", s, "must be `person` or `service`")),
        }
    }
}

/// A principal as the directory holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Principal {
    /// Unique name (`alice`, `alice@example.org`, `billing-service`).
    pub name: String,
    /// Person or service.
    pub kind: PrincipalKind,
    /// Role names; in Cedar, the principal is `in` each `Role::"<name>"`.
    pub roles: BTreeSet<String>,
    /// Attributes: `department` (text) and `clearance` (an integer) are typed attributes in the
    /// schema; any other key is a Cedar tag (text), read with `principal.getTag("key")`.
    pub attrs: BTreeMap<String, String>,
    /// When it was added (Unix milliseconds).
    pub created_ms: u64,
    /// When it was disabled, if it was. A disabled principal's tokens are all refused.
    pub disabled_ms: Option<u64>,
}

impl Principal {
    /// The principal as the admin API and `sov principal show --json` show it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "object": "principal",
            "name": self.name,
            "kind": self.kind.name(),
            "roles": self.roles,
            "attrs": self.attrs,
            "created_at": sov_audit_core::entry::rfc3339_ms(self.created_ms),
            "disabled_at": self.disabled_ms.map(sov_audit_core::entry::rfc3339_ms),
        })
    }
}

/// A name, role or attribute that breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{value}`: {rule}")]
pub struct InvalidName {
    what: &'static str,
    value: String,
    rule: &'static str,
}

impl InvalidName {
    fn new(what: &'static str, value: &str, rule: &'static str) -> Self {
        let mut value: String = value.chars().filter(|c| !c.is_control()).collect();
        value.truncate(80);
        Self { what, value, rule }
    }
}

fn chars_ok(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
}

/// Principal names: 1 to 64 of `a-z 0-9 . _ @ -`, starting with a letter or digit.
pub fn check_principal_name(name: &str) -> Result<(), InvalidName> {
    if chars_ok(name, 64, b"._@-") {
        Ok(())
    } else {
        Err(InvalidName::new(
            "principal name",
            name,
            "use 1 to 64 of a-z 0-9 . _ @ -, starting with a letter or digit",
        ))
    }
}

/// Role names: 1 to 32 of `a-z 0-9 _ -`, starting with a letter or digit.
pub fn check_role(role: &str) -> Result<(), InvalidName> {
    if chars_ok(role, 32, b"_-") {
        Ok(())
    } else {
        Err(InvalidName::new(
            "role",
            role,
            "use 1 to 32 of a-z 0-9 _ -, starting with a letter or digit",
        ))
    }
}

/// The attribute keys with a type in the schema.
pub const TYPED_ATTRS: [&str; 2] = ["department", "clearance"];

/// Attribute keys: 1 to 32 of `a-z 0-9 _`, starting with a letter, not `kind` (reserved);
/// values: 1 to 256 characters without control characters; `clearance` is an integer.
pub fn check_attr(key: &str, value: &str) -> Result<(), InvalidName> {
    let key_ok = chars_ok(key, 32, b"_") && key.as_bytes()[0].is_ascii_lowercase();
    if !key_ok {
        return Err(InvalidName::new(
            "attribute",
            key,
            "use 1 to 32 of a-z 0-9 _, starting with a letter",
        ));
    }
    if key == "kind" {
        return Err(InvalidName::new(
            "attribute",
            key,
            "`kind` is reserved: it is the principal's kind (person or service)",
        ));
    }
    if value.is_empty() || value.chars().count() > 256 || value.chars().any(char::is_control) {
        return Err(InvalidName::new(
            "attribute value",
            value,
            "use 1 to 256 characters, without control characters",
        ));
    }
    if key == "clearance" && value.parse::<i64>().is_err() {
        return Err(InvalidName::new(
            "clearance",
            value,
            "must be an integer (a level, compared with <, >= in policies)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        for ok in ["alice", "alice@example.org", "billing-svc", "a", "0x.y_z"] {
            assert!(check_principal_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Alice", "-x", "a b", "a\"b", "é", &"a".repeat(65)] {
            assert!(check_principal_name(bad).is_err(), "{bad}");
        }
        assert!(check_role("admin").is_ok());
        assert!(check_role("Admin").is_err());
        assert!(check_role("a.b").is_err());
        assert!(check_attr("department", "oncology").is_ok());
        assert!(check_attr("clearance", "3").is_ok());
        assert!(check_attr("clearance", "high").is_err());
        assert!(check_attr("kind", "person").is_err());
        assert!(check_attr("Dept", "x").is_err());
        assert!(check_attr("site", "").is_err());
        assert!(check_attr("site", "a\nb").is_err());
    }
}
