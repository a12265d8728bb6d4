//! Problem management: the search terms of the known error database, so the desk's words
//! (English or Chinese) find the known errors that describe them through an index.
//!
//! Latin words are lowercased whole words of two or more characters, common words left out;
//! Chinese has no spaces, so each pair of neighbouring CJK characters is a term (a lone
//! character is a term by itself).

/// Most terms kept for one text.
pub const MAX_TERMS: usize = 2_000;

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "for", "from", "has", "have", "in", "is", "it", "its", "not", "of", "on", "or",
    "our", "the", "their", "this", "to", "was", "we", "when", "with", "you",
];

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// The distinct terms of `text`, in order of first appearance.
pub fn search_terms(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |t: String, out: &mut Vec<String>| {
        if out.len() < MAX_TERMS && !out.contains(&t) {
            out.push(t);
        }
    };
    let mut word = String::new();
    let mut cjk: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, out: &mut Vec<String>, push: &mut dyn FnMut(String, &mut Vec<String>)| {
        if word.chars().count() >= 2 && !STOP_WORDS.contains(&word.as_str()) {
            push(std::mem::take(word), out);
        }
        word.clear();
    };
    let flush_cjk = |cjk: &mut Vec<char>, out: &mut Vec<String>, push: &mut dyn FnMut(String, &mut Vec<String>)| {
        match cjk.len() {
            0 => {}
            1 => push(cjk[0].to_string(), out),
            _ => cjk.windows(2).for_each(|w| push(w.iter().collect(), out)),
        }
        cjk.clear();
    };
    for c in text.chars() {
        if is_cjk(c) {
            flush_word(&mut word, &mut out, &mut push);
            cjk.push(c);
        } else if c.is_alphanumeric() {
            flush_cjk(&mut cjk, &mut out, &mut push);
            word.extend(c.to_lowercase());
        } else {
            flush_word(&mut word, &mut out, &mut push);
            flush_cjk(&mut cjk, &mut out, &mut push);
        }
    }
    flush_word(&mut word, &mut out, &mut push);
    flush_cjk(&mut cjk, &mut out, &mut push);
    out
}

/// How many of a query's terms a known error must share to be suggested: all of a one-term
/// query, otherwise two.
pub fn min_hits(query_terms: usize) -> usize {
    query_terms.clamp(1, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn words_and_chinese_pairs() {
        assert_eq!(search_terms("The VPN client drops, VPN!"), ["vpn", "client", "drops"]);
        assert_eq!(search_terms("邮件同步失败"), ["邮件", "件同", "同步", "步失", "失败"]);
        assert_eq!(search_terms("Outlook 邮件 a 打"), ["outlook", "邮件", "打"]);
        assert_eq!(search_terms("  ,, "), Vec::<String>::new());
        assert_eq!(search_terms("HTTP502错误"), ["http502", "错误"]);
    }

    #[test]
    fn at_least_two_shared_terms_unless_the_query_is_one_word() {
        assert_eq!((min_hits(0), min_hits(1), min_hits(2), min_hits(9)), (1, 1, 2, 2));
    }

    proptest! {
        #[test]
        fn terms_are_distinct_lowercase_and_found_in_the_text(text in "\\PC{0,200}") {
            let terms = search_terms(&text);
            let lower: String = text.chars().flat_map(char::to_lowercase).collect();
            for (i, t) in terms.iter().enumerate() {
                prop_assert!(!terms[..i].contains(t));
                prop_assert!(!t.is_empty() && t.chars().all(char::is_alphanumeric));
                prop_assert!(lower.contains(t.as_str()), "{t}");
            }
            prop_assert!(terms.len() <= MAX_TERMS);
        }
    }
}
