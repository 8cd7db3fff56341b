//! `cargo +nightly fuzz run decode`: see `lambdaflow::fuzzing::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lambdaflow::fuzzing::decode(data));
