//! Incident management: files attached to tickets and their conversation — the rules for the
//! name kept, the content type served and who may download them.

use super::comment::Visibility;
use crate::error::FieldError;
use crate::identity::AccountKind;

/// Longest file name kept (in characters); longer names are shortened, keeping the extension.
pub const FILE_NAME_MAX: usize = 200;

/// Types a browser may show inline: images it cannot run script from, and PDF. Anything else
/// (HTML, SVG, scripts, office files) is served as a download.
pub const INLINE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"];

/// The content type of a file whose real type is not on the inline list.
pub const OPAQUE_TYPE: &str = "application/octet-stream";

/// The name a file is kept under: the last path component, without control characters or
/// characters that mean something to a shell or a `Content-Disposition` header, at most
/// [`FILE_NAME_MAX`] characters; `attachment` when nothing is left.
pub fn clean_file_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String =
        last.chars().filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*' | '\u{202e}')).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_string();
    if cleaned.is_empty() {
        return "attachment".into();
    }
    if cleaned.chars().count() <= FILE_NAME_MAX {
        return cleaned;
    }
    let ext: String = match cleaned.rsplit_once('.') {
        Some((_, e)) if !e.is_empty() && e.chars().count() <= 10 => format!(".{e}"),
        _ => String::new(),
    };
    let keep = FILE_NAME_MAX - ext.chars().count();
    format!("{}{ext}", cleaned.chars().take(keep).collect::<String>())
}

/// The type a file is served with: the declared type only when it is on the inline list and
/// the file's first bytes are really of that type; otherwise [`OPAQUE_TYPE`].
pub fn served_type(declared: &str, head: &[u8]) -> &'static str {
    let declared = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let sniffed = sniff(head);
    match sniffed {
        Some(t) if t == declared || (t == "image/jpeg" && declared == "image/jpg") => t,
        _ => OPAQUE_TYPE,
    }
}

fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else if head.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}

/// Whether a file of this served type is shown in the browser rather than downloaded.
pub fn is_inline(served: &str) -> bool {
    INLINE_TYPES.contains(&served)
}

/// `Content-Disposition` (RFC 6266): an ASCII `filename` fallback and the exact name as
/// `filename*` (RFC 8187, UTF-8, percent-encoded).
pub fn content_disposition(inline: bool, file_name: &str) -> String {
    let fallback: String =
        file_name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' && c != '%' || c == ' ' { c } else { '_' }).collect();
    let mut encoded = String::new();
    for b in file_name.as_bytes() {
        match *b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~' => {
                encoded.push(char::from(*b))
            }
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// Who may download an attachment of a ticket they can see: staff always; a customer contact
/// only files of public replies or the ticket itself, never those of internal notes.
pub fn may_download(kind: AccountKind, visibility: Visibility) -> bool {
    super::comment::may_see_comment(kind, visibility)
}

/// The size check done while a file streams in.
pub fn check_size(size: u64, max: u64) -> Result<(), FieldError> {
    if size == 0 {
        return Err(FieldError::new("file", "empty_file", "the file is empty"));
    }
    if size > max {
        return Err(FieldError::new("file", "too_large", format!("the file is larger than the limit of {max} bytes")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_and_dangerous_characters() {
        assert_eq!(clean_file_name("C:\\Users\\x\\report.pdf"), "report.pdf");
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("a\"b\r\n.txt"), "ab.txt");
        assert_eq!(clean_file_name(""), "attachment");
        assert_eq!(clean_file_name("..."), "attachment");
        assert_eq!(clean_file_name("故障截图.png"), "故障截图.png");
        let long = format!("{}.log", "x".repeat(500));
        let kept = clean_file_name(&long);
        assert_eq!(kept.chars().count(), FILE_NAME_MAX);
        assert!(kept.ends_with(".log"));
    }

    #[test]
    fn only_real_images_and_pdf_are_inline() {
        assert_eq!(served_type("image/png", b"\x89PNG\r\n\x1a\nrest"), "image/png");
        assert_eq!(served_type("text/html", b"\x89PNG\r\n\x1a\n"), OPAQUE_TYPE, "declared type must match");
        assert_eq!(served_type("image/png", b"<script>alert(1)</script>"), OPAQUE_TYPE);
        assert_eq!(served_type("image/svg+xml", b"<svg onload=alert(1)>"), OPAQUE_TYPE);
        assert_eq!(served_type("application/pdf; x=y", b"%PDF-1.7"), "application/pdf");
        assert!(is_inline("image/png") && !is_inline(OPAQUE_TYPE) && !is_inline("text/html"));
    }

    #[test]
    fn content_disposition_keeps_the_name_safely() {
        assert_eq!(content_disposition(false, "a b.txt"), "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt");
        let cd = content_disposition(true, "报告.pdf");
        assert!(cd.starts_with("inline; filename=\"__.pdf\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf"), "{cd}");
        let cd = content_disposition(false, "x\";.html");
        assert!(!cd.contains("x\";"), "{cd}");
    }

    #[test]
    fn contacts_never_download_files_of_internal_notes() {
        assert!(may_download(AccountKind::Staff, Visibility::Internal));
        assert!(may_download(AccountKind::Contact, Visibility::Public));
        assert!(!may_download(AccountKind::Contact, Visibility::Internal));
    }

    #[test]
    fn size_limit_names_the_field() {
        assert!(check_size(10, 10).is_ok());
        assert_eq!(check_size(11, 10).unwrap_err().code, "too_large");
        assert_eq!(check_size(0, 10).unwrap_err().code, "empty_file");
    }
}
