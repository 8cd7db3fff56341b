//! `cargo +nightly fuzz run config`: see `lambdaflow::fuzzing::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lambdaflow::fuzzing::config(data));
