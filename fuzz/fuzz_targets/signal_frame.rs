#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| majlis_core::fuzz::signal_frame(data));
