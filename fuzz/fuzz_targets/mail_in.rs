//! Service desk, email channel: the inbound parsing path must never panic on any bytes.
//! Run with `cargo +nightly fuzz run mail_in -- -dict=... ` from `fuzz/`; seed the corpus
//! from `crates/app/tests/data/mail/`. A crash found becomes a regression test in
//! `crates/app/tests/stories.rs` (`mod mail_in`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mail) = keel_app::mail_in::parse_mail(data, Some("keel.example.com")) {
        let _ = keel_domain::mail::trim_quoted(&mail.text);
        let _ = keel_domain::mail::clean_subject(&mail.subject);
        let _ = keel_domain::mail::subject_ticket_number(&mail.subject);
        for id in mail.in_reply_to.iter().chain(&mail.references) {
            let _ = keel_domain::mail::thread_ticket_id(id);
        }
    }
    let _ = keel_app::mail_in::sanitize_html(&String::from_utf8_lossy(data));
});
