//! Service desk, email channel: the inbound parsing path must never panic on any bytes.
//! Run with `cargo +nightly fuzz run mail_in -- -dict=... ` from `fuzz/`; seed the corpus
//! from `crates/app/tests/data/mail/`. A crash found becomes a regression test in
//! `crates/app/tests/stories.rs` (`mod mail_in`, `parsing_regressions`); the same entry point
//! runs under proptest in CI (`any_bytes_and_mangled_mail_parse_without_panicking`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    keel_app::mail_in::exercise_parsing(data);
});
