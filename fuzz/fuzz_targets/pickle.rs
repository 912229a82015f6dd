//! The restricted unpickler of the book's weight files on arbitrary bytes: it must return
//! tensors or an error, never panic, hang, or allocate much more than the input holds; and
//! what it reads, written back by this crate, reads back the same.
#![no_main]

use std::path::Path;

use backprop::io::{LoadOptions, model_from, pickle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let path = Path::new("fuzz.pkl");
    let Ok(file) = pickle::parse(bytes, path) else {
        return;
    };
    // Values that float32 holds exactly survive a round trip through this crate's writer.
    let exact = file
        .tensors
        .iter()
        .all(|(_, a)| a.iter().all(|&v| f64::from(v as f32).to_bits() == v.to_bits()));
    if exact {
        let f32s: Vec<_> = file
            .tensors
            .iter()
            .map(|(n, a)| (n.clone(), a.mapv(|v| v as f32)))
            .collect();
        let views: Vec<_> = f32s.iter().map(|(n, a)| (n.clone(), a.view())).collect();
        let again = pickle::parse(&pickle::encode(&views), path).expect("its own pickle reads");
        let bits = |t: &[(String, ndarray::ArrayD<f64>)]| -> Vec<(String, Vec<usize>, Vec<u64>)> {
            t.iter()
                .map(|(n, a)| (n.clone(), a.shape().to_vec(), a.iter().map(|v| v.to_bits()).collect()))
                .collect()
        };
        assert_eq!(bits(&again.tensors), bits(&file.tensors));
    }
    // Whatever the tensors, recognising a net from them answers or refuses.
    let _ = model_from(file, path, LoadOptions::default());
});
