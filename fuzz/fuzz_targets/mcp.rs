//! What an MCP server sends back never panics the node: the bytes as a `tools/list` result
//! (each tool offered under a valid name with an object schema, or left out by name) and as a
//! `tools/call` result (a value, or an error whose text is bounded).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sov_mcp::server::{MAX_ERROR_TEXT, answer_value};
use sov_mcp::{CallToolResult, ListToolsResult};

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = serde_json::from_slice::<ListToolsResult>(data) {
        let (offered, skipped) = sov_mcp::specs("fuzz", &list.tools);
        assert_eq!(offered.len() + skipped.len(), list.tools.len());
        for (_, spec) in &offered {
            assert!(sov_tools::valid_name(&spec.name), "{}", spec.name);
            assert!(spec.name.starts_with("fuzz__"), "{}", spec.name);
            assert_eq!(spec.parameters["type"], "object");
        }
    }
    if let Ok(answer) = serde_json::from_slice::<CallToolResult>(data) {
        match answer_value(answer) {
            Ok(value) => assert!(value.get("content").is_some(), "{value}"),
            Err(e) => assert!(e.to_string().len() <= MAX_ERROR_TEXT + 8, "{e}"),
        }
    }
});
