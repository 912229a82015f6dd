//! Image decoding for `predict` (PNG, JPEG) on arbitrary bytes: a 28×28 digit or an error.
#![no_main]

use backprop::data::digitize_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(pixels) = digitize_bytes(bytes, 28, 28) {
        assert_eq!(pixels.len(), 28 * 28);
    }
});
