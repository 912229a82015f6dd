//! The model-file loader (safetensors with backprop's metadata) on arbitrary bytes: it must
//! return a net or an error, never panic or allocate what the file does not hold.
#![no_main]

use std::path::Path;

use backprop::io::{LoadOptions, TensorFile, model_from};
use backprop::layers::Mode;
use libfuzzer_sys::fuzz_target;
use ndarray::ArrayD;

fuzz_target!(|bytes: &[u8]| {
    let path = Path::new("fuzz.safetensors");
    let Ok(file) = TensorFile::parse(bytes, path) else {
        return;
    };
    let Ok((mut net, info)) = model_from(file, path, LoadOptions::default()) else {
        return;
    };
    // A net that loads answers one input with one finite score per class.
    let inputs = info.net.inputs();
    if inputs <= 1 << 16 {
        let x = ArrayD::<f32>::zeros(vec![1, inputs]);
        let scores = net.predict(x.view(), Mode::Eval);
        assert_eq!(scores.dim(), (1, info.net.outputs()));
    }
});
