//! Service desk, email channel: the inbound parsing path (`keel-mailparse`) must never panic on
//! any bytes. See `fuzz/README.md` for how to run it; a crash found becomes a regression test in
//! `crates/mailparse/src/tests.rs` (`parsing_regressions`), where the same entry point also
//! runs under proptest in CI (`any_bytes_and_mangled_mail_parse_without_panicking`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    keel_mailparse::exercise_parsing(data);
});
