//! Release management: release notes for customers as PDF. A small hand-written PDF writer
//! of plain text lines in the standard CJK font STSong-Light (UniGB-UCS2-H encoding), so
//! Chinese needs no embedded font; a ToUnicode map keeps the text extractable.

use std::fmt::Write;

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 56.0;
const SIZE: f32 = 11.0;
const LEADING: f32 = 16.0;

/// Width of a character in thousandths of the font size (CJK full width, Latin half width).
fn width(c: char) -> f32 {
    if u32::from(c) < 0x2E80 { 500.0 } else { 1000.0 }
}

/// Splits a line so that each part fits the text width.
fn wrap(line: &str) -> Vec<String> {
    let max = (PAGE_W - 2.0 * MARGIN) / SIZE * 1000.0;
    let mut out = vec![String::new()];
    let mut used = 0.0;
    for c in line.chars() {
        if used + width(c) > max {
            out.push(String::new());
            used = 0.0;
        }
        used += width(c);
        if let Some(l) = out.last_mut() {
            l.push(c);
        }
    }
    out
}

/// The line as UCS-2 hex; characters outside the BMP become `?`.
fn hex(line: &str) -> String {
    let mut s = String::new();
    for c in line.chars() {
        let u = u32::from(c);
        let _ = write!(s, "{:04X}", if u > 0xFFFF { 0x3F } else { u });
    }
    s
}

/// Plain text of a Markdown line: headings, bold marks and backslash escapes removed.
fn plain(md: &str) -> String {
    let t = md.trim_start_matches('#').trim_start();
    let t = if md.starts_with('#') { t } else { md };
    let t = t.replace("**", "");
    let mut out = String::new();
    let mut esc = false;
    for c in t.chars() {
        if c == '\\' && !esc {
            esc = true;
            continue;
        }
        esc = false;
        out.push(c);
    }
    out
}

/// Renders Markdown release notes as a PDF of its text, page after page.
pub fn notes_pdf(markdown: &str) -> Vec<u8> {
    let lines: Vec<String> = markdown.lines().flat_map(|l| wrap(&plain(l))).collect();
    let per_page = ((PAGE_H - 2.0 * MARGIN) / LEADING) as usize;
    let pages: Vec<&[String]> = if lines.is_empty() { vec![&lines[..]] } else { lines.chunks(per_page).collect() };
    let mut objects: Vec<String> = Vec::new();
    // 1 catalog, 2 pages, 3 font, 4 CID font, 5 descriptor, 6 ToUnicode, then page and content pairs
    let kids: Vec<String> = (0..pages.len()).map(|i| format!("{} 0 R", 7 + 2 * i)).collect();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), pages.len()));
    objects.push(
        "<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /DescendantFonts [4 0 R] /ToUnicode 6 0 R >>"
            .into(),
    );
    objects.push(
        "<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 2 >> \
         /FontDescriptor 5 0 R /DW 1000 /W [1 95 500] >>"
            .into(),
    );
    objects.push(
        "<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] /ItalicAngle 0 /Ascent 880 \
         /Descent -120 /CapHeight 880 /StemV 93 >>"
            .into(),
    );
    let mut cmap = String::from(
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def \
         /CMapName /Keel-UCS2 def /CMapType 2 def\n1 begincodespacerange <0000> <FFFF> endcodespacerange\n",
    );
    for block in (0..256).collect::<Vec<u32>>().chunks(100) {
        let _ = writeln!(cmap, "{} beginbfrange", block.len());
        for hi in block {
            let _ = writeln!(cmap, "<{hi:02X}00> <{hi:02X}FF> <{hi:02X}00>");
        }
        cmap.push_str("endbfrange\n");
    }
    cmap.push_str("endcmap CMapName currentdict /CMap defineresource pop end end");
    objects.push(format!("<< /Length {} >>\nstream\n{}\nendstream", cmap.len() + 1, cmap));
    for page in &pages {
        let n = objects.len() + 1;
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            n + 1
        ));
        let mut content = format!("BT /F1 {SIZE} Tf {LEADING} TL {MARGIN} {} Td\n", PAGE_H - MARGIN);
        for line in page.iter() {
            let _ = writeln!(content, "<{}> Tj T*", hex(line));
        }
        content.push_str("ET");
        objects.push(format!("<< /Length {} >>\nstream\n{}\nendstream", content.len() + 1, content));
    }
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{}\nendobj\n", i + 1, o).as_bytes());
    }
    let xref = out.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for off in offsets {
        let _ = writeln!(tail, "{off:010} 00000 n ");
    }
    let _ = write!(tail, "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1);
    out.extend_from_slice(tail.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_plain_wrapped_and_encoded() {
        assert_eq!(plain("# 发布说明：ERP \\*2\\*"), "发布说明：ERP *2*");
        assert_eq!(plain("- **Version:** 2.4"), "- Version: 2.4");
        assert_eq!(hex("A发"), "004153D1");
        assert_eq!(wrap(&"发".repeat(100)).len(), 3);
        let pdf = notes_pdf(&"line\n".repeat(200));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-1.4") && text.ends_with("%%EOF\n"));
        assert!(text.contains("/Count 5"), "200 lines over pages of 45");
    }
}
