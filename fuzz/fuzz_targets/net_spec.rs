//! The net-spec parser (`784-100-10`) and the architecture JSON of model files on arbitrary
//! text: each parses or gives an error, and what parses prints back as itself.
#![no_main]

use backprop::net::{Architecture, NetSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(spec) = text.parse::<NetSpec>() {
        let printed = spec.to_string();
        assert_eq!(printed.parse::<NetSpec>().ok(), Some(spec));
    }
    if let Ok(arch) = serde_json::from_str::<Architecture>(text) {
        let _ = arch.param_count();
        let _ = arch.layout();
        let json = serde_json::to_string(&arch).expect("an architecture serialises");
        assert_eq!(serde_json::from_str::<Architecture>(&json).ok(), Some(arch));
    }
});
