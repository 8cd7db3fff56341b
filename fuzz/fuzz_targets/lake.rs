//! `cargo +nightly fuzz run lake`: see `lambdaflow::fuzzing::lake`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lambdaflow::fuzzing::lake(data));
