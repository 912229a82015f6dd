//! The IDX reader on arbitrary bytes, raw and (when the first byte is odd) gzip-compressed,
//! so the fuzzer explores both the header checks behind the decoder and corrupt gzip streams;
//! raw bytes that start with the xz magic (the seed `corrupt.xz`) reach the xz decoder.
#![no_main]

use std::io::Write;
use std::path::Path;

use backprop::data::{encode_idx, parse_idx};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, bytes)) = input.split_first() else {
        return;
    };
    let owned;
    let bytes = if mode % 2 == 1 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).expect("writing to memory");
        owned = gz.finish().expect("writing to memory");
        &owned[..]
    } else {
        bytes
    };
    if let Ok(idx) = parse_idx(bytes, Path::new("fuzz.idx")) {
        // What parses is exactly what its header says, and encodes back to the same file.
        assert_eq!(idx.dims.iter().product::<usize>(), idx.data.len());
        let encoded = encode_idx(&idx.dims, &idx.data);
        assert_eq!(parse_idx(&encoded, Path::new("again.idx")).ok(), Some(idx));
    }
});
