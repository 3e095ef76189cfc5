//! `Resource::parse` (the command line's `type:id[,key=value...]`) never panics; what parses
//! re-parses to the same resource from its canonical form, and its Cedar form is written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sov_policy::Resource;

/// The canonical command-line form of `r`: lower-case type, id, then its attributes.
fn cli_form(r: &Resource) -> String {
    match r {
        Resource::Document {
            id,
            corpus,
            clearance,
            attrs,
        } => {
            let mut s = format!("document:{id}");
            if let Some(c) = corpus {
                s.push_str(&format!(",corpus={c}"));
            }
            if let Some(c) = clearance {
                s.push_str(&format!(",clearance={c}"));
            }
            for (k, v) in attrs {
                s.push_str(&format!(",{k}={v}"));
            }
            s
        }
        Resource::Memory { id, owner } => format!("memory:{id},owner={owner}"),
        other => format!("{}:{}", other.type_name().to_ascii_lowercase(), other.id()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(resource) = Resource::parse(text) else {
        return;
    };
    let _ = resource.to_string();
    let form = cli_form(&resource);
    assert_eq!(
        Resource::parse(&form).as_ref(),
        Ok(&resource),
        "{text:?} parsed, but its canonical form {form:?} does not give it back"
    );
});
