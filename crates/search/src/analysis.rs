//! Text analysis for one field holding Chinese and English: jieba segments Chinese runs,
//! English words are lower-cased and stemmed, and compound tokens (ticket numbers, e-mail
//! addresses, IP addresses, host names) are kept whole so they are found exactly.

use jieba_rs::{Jieba, TokenizeMode};
use std::sync::LazyLock;
use tantivy::tokenizer::{Language, RawTokenizer, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer};

static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

/// Loads the jieba dictionary now rather than on the first document or query.
pub fn warm() {
    LazyLock::force(&JIEBA);
}

/// Documents are segmented in search mode (`打印机` also yields `打印`), queries precisely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Index,
    Query,
}

pub const INDEX_TOKENIZER: &str = "keel";

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2EBEF | 0x3040..=0x30FF | 0xAC00..=0xD7AF)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// Characters that join word parts into one compound token (`INC-000042`, `a.b@c.cn`,
/// `10.0.0.1`, `fe80::1`, `srv-db01.corp.local`).
fn is_joiner(c: char) -> bool {
    matches!(c, '-' | '.' | '@' | ':' | '_' | '/')
}

#[derive(Clone)]
pub struct KeelTokenizer {
    mode: Mode,
    stemmer: TextAnalyzer,
    tokens: Vec<Token>,
}

impl KeelTokenizer {
    pub fn new(mode: Mode) -> Self {
        KeelTokenizer {
            mode,
            stemmer: TextAnalyzer::builder(RawTokenizer::default()).filter(Stemmer::new(Language::English)).build(),
            tokens: vec![],
        }
    }

    fn stem(&mut self, lower: &str) -> String {
        if !lower.chars().any(|c| c.is_ascii_alphabetic()) {
            return lower.to_string();
        }
        let mut s = self.stemmer.token_stream(lower);
        if s.advance() { s.token().text.clone() } else { lower.to_string() }
    }

    /// The tokens of `text`; positions are consistent between both modes so phrases match.
    pub fn analyze(&mut self, text: &str) -> Vec<Token> {
        let mut out = Vec::new();
        let mut position = 0usize;
        let mut chars = text.char_indices().peekable();
        while let Some(&(start, c)) = chars.peek() {
            if is_cjk(c) {
                let mut end = start;
                while let Some(&(i, c)) = chars.peek() {
                    if !is_cjk(c) {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                let run = &text[start..end];
                let mode = if self.mode == Mode::Index { TokenizeMode::Search } else { TokenizeMode::Default };
                let mut run_chars = 0;
                for t in JIEBA.tokenize(run, mode, true) {
                    let from = start + (t.word.as_ptr() as usize - run.as_ptr() as usize);
                    out.push(Token {
                        offset_from: from,
                        offset_to: from + t.word.len(),
                        position: position + t.start,
                        text: t.word.to_string(),
                        position_length: 1,
                    });
                    run_chars = run_chars.max(t.end);
                }
                position += run_chars;
            } else if c.is_whitespace() || !(is_word_char(c) || is_joiner(c)) {
                chars.next();
            } else {
                let mut end = start;
                while let Some(&(i, c)) = chars.peek() {
                    if !(is_word_char(c) || is_joiner(c)) {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                self.chunk(text, start, end, &mut position, &mut out);
            }
        }
        out
    }

    fn chunk(&mut self, text: &str, start: usize, end: usize, position: &mut usize, out: &mut Vec<Token>) {
        let raw = &text[start..end];
        let trimmed_start = raw.len() - raw.trim_start_matches(|c: char| !is_word_char(c)).len();
        let body = raw.trim_matches(|c: char| !is_word_char(c));
        if body.is_empty() {
            return;
        }
        let from = start + trimmed_start;
        let parts: Vec<(usize, &str)> = body
            .split(|c: char| !is_word_char(c))
            .scan(0usize, |at, p| {
                let here = *at;
                *at += p.len() + 1;
                Some((here, p))
            })
            .filter(|(_, p)| !p.is_empty())
            .collect();
        if parts.len() > 1 {
            out.push(Token {
                offset_from: from,
                offset_to: from + body.len(),
                position: *position,
                text: body.to_lowercase(),
                position_length: 1,
            });
            if self.mode == Mode::Index {
                // Host names and mail domains inside a compound are found on their own too.
                let mut at = 0;
                for piece in body.split(['@', '/', ':']) {
                    let label = piece.split('.').next().unwrap_or(piece);
                    for (sub, len) in [(piece, piece.len()), (label, label.len())] {
                        if sub.len() < body.len() && sub.contains(|c: char| !is_word_char(c)) && sub.contains(|c: char| is_word_char(c)) {
                            out.push(Token {
                                offset_from: from + at,
                                offset_to: from + at + len,
                                position: *position,
                                text: sub.to_lowercase(),
                                position_length: 1,
                            });
                        }
                    }
                    at += piece.len() + 1;
                }
                for (at, p) in parts {
                    let text = self.stem(&p.to_lowercase());
                    out.push(Token {
                        offset_from: from + at,
                        offset_to: from + at + p.len(),
                        position: *position,
                        text,
                        position_length: 1,
                    });
                }
            }
        } else {
            let text = self.stem(&body.to_lowercase());
            out.push(Token { offset_from: from, offset_to: from + body.len(), position: *position, text, position_length: 1 });
        }
        *position += 1;
    }
}

impl Tokenizer for KeelTokenizer {
    type TokenStream<'a> = KeelTokenStream<'a>;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> KeelTokenStream<'a> {
        self.tokens = self.analyze(text);
        KeelTokenStream { tokens: &self.tokens, next: 0 }
    }
}

pub struct KeelTokenStream<'a> {
    tokens: &'a [Token],
    next: usize,
}

impl TokenStream for KeelTokenStream<'_> {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }
    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        unreachable!("keel tokens are not filtered")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(mode: Mode, text: &str) -> Vec<String> {
        KeelTokenizer::new(mode).analyze(text).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn chinese_is_segmented_in_search_mode_for_documents() {
        let t = terms(Mode::Index, "打印机无法打印");
        assert!(t.contains(&"打印机".to_string()), "{t:?}");
        assert!(t.contains(&"打印".to_string()), "{t:?}");
        assert_eq!(terms(Mode::Query, "打印机"), vec!["打印机"]);
        assert_eq!(terms(Mode::Query, "打印"), vec!["打印"]);
    }

    #[test]
    fn english_is_stemmed_and_lower_cased() {
        assert_eq!(terms(Mode::Query, "Printers"), vec!["printer"]);
        assert_eq!(terms(Mode::Index, "printer"), vec!["printer"]);
        assert_eq!(terms(Mode::Query, "printing failed"), vec!["print", "fail"]);
    }

    #[test]
    fn compound_tokens_stay_whole() {
        assert_eq!(terms(Mode::Query, "INC-000042"), vec!["inc-000042"]);
        assert_eq!(terms(Mode::Query, "zhang.san@example.com."), vec!["zhang.san@example.com"]);
        assert_eq!(terms(Mode::Query, "(10.0.12.7)"), vec!["10.0.12.7"]);
        assert_eq!(terms(Mode::Query, "srv-db01.corp.local"), vec!["srv-db01.corp.local"]);
        let t = terms(Mode::Index, "ping 10.0.12.7 from srv-db01.corp.local");
        for w in ["10.0.12.7", "srv-db01.corp.local", "srv", "db01", "corp", "ping"] {
            assert!(t.contains(&w.to_string()), "{w} in {t:?}");
        }
    }

    #[test]
    fn mixed_text_keeps_both_languages_and_consistent_positions() {
        let mut k = KeelTokenizer::new(Mode::Index);
        let toks = k.analyze("VPN 连接失败 on laptop");
        let texts: Vec<_> = toks.iter().map(|t| t.text.as_str()).collect();
        assert!(texts.contains(&"vpn") && texts.contains(&"连接") && texts.contains(&"失败") && texts.contains(&"laptop"), "{texts:?}");
        let q = KeelTokenizer::new(Mode::Query).analyze("连接失败");
        let pos: Vec<_> = q.iter().map(|t| t.position).collect();
        let doc_pos: Vec<_> = q.iter().map(|qt| toks.iter().find(|t| t.text == qt.text).unwrap().position).collect();
        assert_eq!(pos[1] - pos[0], doc_pos[1] - doc_pos[0]);
    }
}
