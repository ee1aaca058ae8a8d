#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| majlis_core::fuzz::push_frame(data));
