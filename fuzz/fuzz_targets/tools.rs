//! The built-in tools (sov-tools) never panic on what a model or a client sends them: the
//! bytes as a calculator expression and as a question to recognise, and as JSON arguments to
//! each of `calculator`, `units` and `dates`; a plain question (`plain::recognise`) is called
//! and stated. A recognised question's expression is one the
//! calculator reads (it may still refuse to compute it), and a calculator result with places
//! has exactly that many digits after the point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sov_tools::calc::{self, CalcError};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = calc::calculate(text, Some(3)) {
            let (_, fraction) = c.result.split_once('.').expect("a point with places");
            assert_eq!(fraction.len(), 3, "{c:?}");
        }
        let _ = calc::calculate(text, None);
        let all = ["calculator", "units", "dates"].map(String::from);
        if let Some(p) = sov_tools::plain::recognise(text, &all) {
            // The tool it names takes the arguments it made, or refuses them by name.
            let tools = sov_tools::Toolbox::builtins();
            let result = tools.get(p.tool).expect("a built-in").call(&p.arguments);
            let _ = sov_tools::plain::statement(p.tool, &p.arguments, &result.map_err(|e| e.to_string()));
        }
        if let Some(r) = calc::recognise(text) {
            match r.calculate() {
                Err(CalcError::Lex(_) | CalcError::Parse(_)) => {
                    panic!("recognised but unreadable: {r:?}")
                }
                _ => {}
            }
        }
    }
    if let Ok(args) = serde_json::from_slice::<serde_json::Value>(data) {
        let tools = sov_tools::Toolbox::builtins();
        for (_, tool) in tools.iter() {
            let _ = tool.call(&args);
        }
    }
});
