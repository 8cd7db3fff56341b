//! `cargo +nightly fuzz run http`: see `lambdaflow::fuzzing::http`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lambdaflow::fuzzing::http(data));
