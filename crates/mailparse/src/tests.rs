//! Service desk, email channel: the parsing path on the corpus of real mail
//! (`crates/app/tests/data/mail/`: Outlook, Gmail, Apple Mail, Foxmail, GBK/GB18030/Big5,
//! HTML-only, auto-replies, bounces), under proptest, and the inputs the fuzzer found.

use super::*;
use rules::Noise;

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../app/tests/data/mail/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn parsed(name: &str) -> InboundMail {
    parse_mail(&corpus(name), Some("keel.example.com")).unwrap()
}

#[test]
fn html_is_sanitised() {
    let safe = sanitize_html(
        r#"<p onclick="x()">Hi <b>there</b></p><script>alert(1)</script><style>p{}</style><img src="https://track.example/p.gif"><a href="javascript:x()">l</a>"#,
    );
    assert!(!safe.contains("script") && !safe.contains("onclick") && !safe.contains("track.example") && !safe.contains("p{}"));
    assert!(!safe.contains("javascript"));
    assert!(safe.contains("<b>there</b>"));
}

#[test]
fn empty_and_senderless_mail_is_invalid() {
    assert_eq!(parse_mail(b"", None).unwrap_err(), ParseError("the message is empty"));
    assert!(parse_mail(b"Subject: x\r\n\r\nbody", None).is_err());
}

#[test]
fn missing_message_id_is_a_digest() {
    let raw = b"From: a@example.com\r\nSubject: x\r\n\r\nbody";
    let a = parse_mail(raw, None).unwrap();
    assert!(a.message_id.starts_with("sha256-"));
    assert_eq!(a.message_id, parse_mail(raw, None).unwrap().message_id);
}

#[test]
fn the_corpus_parses_as_people_send_it() {
    let m = parsed("outlook_new.eml");
    assert_eq!((m.from.as_str(), m.from_name.as_deref()), ("li.lei@acme.test", Some("李雷")));
    assert!(m.text.contains("\"authentication timed out\""), "{}", m.text);
    assert_eq!(m.safe_html, None, "text/plain is preferred");
    assert_eq!(m.files.len(), 1);
    assert_eq!((m.files[0].file_name.as_str(), m.files[0].content_type.as_str()), ("vpn-error-log.pdf", "application/pdf"));
    assert!(m.files[0].bytes.starts_with(b"%PDF"));
    assert_eq!(m.noise, None);

    let m = parsed("gmail_reply_in_reply_to.eml");
    assert_eq!(m.in_reply_to, vec!["0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b@keel.example.com".to_string()]);
    assert!(m.references.contains(&"ticket-{TICKET_ID}@keel.example.com".to_string()));
    assert_eq!(m.reply_text, "It works again after the certificate update, thank you!");
    assert_eq!(m.message_id, "CAJx9ZQk7Vq1pXyZ3bT5n+Wm=QeR8sLdF2u0aB4cD6eF8gH0iJ@mail.gmail.com");

    let m = parsed("apple_mail_inline_image.eml");
    assert_eq!(m.files.len(), 1);
    assert!(m.files[0].inline && m.files[0].file_name == "display.png" && m.files[0].content_type == "image/png");
    assert!(m.text.starts_with("The display in meeting room 3 flickers"));

    let m = parsed("foxmail_gbk.eml");
    assert_eq!((m.subject.as_str(), m.from_name.as_deref()), ("财务室打印机无法打印", Some("李雷")));
    assert!(m.text.contains("三楼财务室的打印机从昨天开始无法打印，显示“脱机”。"), "{}", m.text);

    let m = parsed("html_only.eml");
    let html = m.safe_html.clone().unwrap();
    for bad in ["<script", "document.cookie", "tracker.example.net", "onload", "onclick", "<style"] {
        assert!(!html.contains(bad), "{bad} left in {html}");
        assert!(!m.text.contains(bad), "{bad} left in {}", m.text);
    }
    assert!(html.contains("<b>signup form</b>") && m.text.contains("signup form"), "{}", m.text);

    let m = parsed("big5_stranger.eml");
    assert_eq!((m.subject.as_str(), m.from_name.as_deref()), ("電子郵件無法寄出", Some("陳小姐")));
    assert!(m.text.contains("台北分公司的電子郵件無法寄出"));

    let m = parsed("encoded_subject_gb18030.eml");
    assert_eq!(m.subject, "报销系统无法登录");
    assert!(m.text.contains("会话已过期"));

    assert_eq!(parsed("auto_reply.eml").noise, Some(Noise::AutoReply));
    assert_eq!(parsed("dsn_bounce.eml").noise, Some(Noise::Bounce));
    assert_eq!(parsed("own_mail.eml").noise, Some(Noise::OwnMail));
    assert_eq!(parsed("reply_by_subject.eml").reply_text, "The Beijing office has the same problem now.");
}

/// The fuzz target's entry point also runs here under proptest, on stable Rust and in CI: arbitrary bytes, and the corpus mangled by
/// byte flips, insertions and truncation.
mod fuzzing {
    use super::corpus;
    use crate::exercise_parsing;
    use proptest::prelude::*;

    const FILES: &[&str] = &[
        "apple_mail_inline_image.eml",
        "auto_reply.eml",
        "big5_stranger.eml",
        "dsn_bounce.eml",
        "encoded_subject_gb18030.eml",
        "foxmail_gbk.eml",
        "gmail_reply_in_reply_to.eml",
        "html_only.eml",
        "outlook_new.eml",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn any_bytes_and_mangled_mail_parse_without_panicking(
            noise in proptest::collection::vec(any::<u8>(), 0..2048),
            file in 0..FILES.len(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..24),
            cut in any::<prop::sample::Index>(),
        ) {
            exercise_parsing(&noise);
            let mut raw = corpus(FILES[file]);
            for (at, byte, how) in edits {
                let i = at.index(raw.len().max(1)).min(raw.len().saturating_sub(1));
                match how {
                    0 if !raw.is_empty() => raw[i] = byte,
                    1 => raw.insert(i, byte),
                    _ if !raw.is_empty() => { raw.remove(i); }
                    _ => {}
                }
            }
            exercise_parsing(&raw);
            raw.truncate(cut.index(raw.len() + 1));
            exercise_parsing(&raw);
        }
    }

    #[test]
    fn parsing_regressions() {
        // Inputs that have broken parsers of this kind before: the corpus still parses,
        // and degenerate mail is refused without a panic.
        for f in FILES {
            assert!(exercise_parsing(&corpus(f)), "{f}");
        }
        for raw in [
            &b""[..],
            b"\r\n\r\n",
            b"From: a@b\r\nContent-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--\r\n",
            b"From: a@b\r\nSubject: =?GBK?B?\xff\xfe?=\r\nContent-Type: text/html\r\n\r\n<a href=<script>",
            b"From: =?utf-8?q?=ZZ?= <@>\r\nReferences: <<<>>>\r\nIn-Reply-To: <ticket-@>\r\n\r\n> > >",
        ] {
            exercise_parsing(raw);
        }
    }
}
