//! Service desk and every process (ISO/IEC 20000-1 8.6, 8.2, 8.7.3): the full-text index over
//! records of all processes. It knows nothing of the database: it takes documents, deletions
//! and a follower position, and answers queries with ranked, permission-checked hits,
//! highlighted snippets and facet counts.

pub mod analysis;
mod collect;
pub mod query;

use analysis::{INDEX_TOKENIZER, KeelTokenizer, Mode};
use collect::{HitCollector, Hits};
use query::{Clause, ParsedQuery};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, EmptyQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TantivyDocument, TextFieldIndexing, TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Term};

pub use analysis::warm;
pub use query::parse;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory: {0}")]
    Directory(String),
}

pub type Result<T> = std::result::Result<T, SearchError>;

/// One record as the index sees it. `source` + `id` name the record (the key deletions use);
/// `kind` is what users filter and facet on (incident, request, ci, service…).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    pub source: String,
    pub id: String,
    pub kind: String,
    pub number: Option<String>,
    pub title: String,
    pub body: String,
    /// Public replies: contacts may match and read them.
    pub comments: Vec<String>,
    /// Internal notes: staff only, never matched or shown for a contact.
    pub internal: Vec<String>,
    pub attachments: Vec<String>,
    pub status: String,
    pub priority: String,
    pub team: String,
    pub project: String,
    /// What permission checks read (never searched as text).
    pub project_id: String,
    pub organization_id: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields of a hit the asker's rights are checked against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Access {
    pub kind: String,
    pub id: String,
    pub project_id: String,
    pub organization_id: String,
}

/// Decides, for each hit, whether the asker may see it. `needs_id(kind)` says whether the
/// decision depends on the record itself (otherwise it is cached per kind/project/organisation).
pub trait Permission: Send + Sync {
    fn allows(&self, a: &Access) -> bool;
    fn needs_id(&self, _kind: &str) -> bool {
        false
    }
    /// Whether internal notes may be searched and shown.
    fn sees_internal(&self) -> bool;
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    key: Field,
    source: Field,
    id: Field,
    kind: Field,
    number: Field,
    title: Field,
    body: Field,
    comments: Field,
    internal: Field,
    attachments: Field,
    status: Field,
    priority: Field,
    team: Field,
    project: Field,
    project_id: Field,
    organization_id: Field,
    created: Field,
    updated: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default().set_tokenizer(INDEX_TOKENIZER).set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let f = Fields {
        key: b.add_text_field("key", STRING),
        source: b.add_text_field("source", STRING | STORED),
        id: b.add_text_field("id", STRING | STORED | FAST),
        kind: b.add_text_field("kind", STRING | STORED | FAST),
        number: b.add_text_field("number", STRING | STORED),
        title: b.add_text_field("title", text.clone()),
        body: b.add_text_field("body", text.clone()),
        comments: b.add_text_field("comments", text.clone()),
        internal: b.add_text_field("internal", text.clone()),
        attachments: b.add_text_field("attachments", text),
        status: b.add_text_field("status", STRING | STORED | FAST),
        priority: b.add_text_field("priority", STRING | STORED),
        team: b.add_text_field("team", STRING | STORED),
        project: b.add_text_field("project", STRING | STORED),
        project_id: b.add_text_field("project_id", STRING | FAST),
        organization_id: b.add_text_field("organization_id", STRING | FAST),
        created: b.add_i64_field("created", INDEXED | STORED | FAST),
        updated: b.add_i64_field("updated", STORED),
    };
    (b.build(), f)
}

fn key_of(source: &str, id: &str) -> String {
    format!("{source}:{id}")
}

/// A change to apply: a record to (re)index from its fresh state, or to remove.
#[derive(Debug, Clone)]
pub enum Change {
    Upsert(Box<Document>),
    Delete { source: String, id: String },
}

/// What to look for, for whom, and which page.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub query: String,
    /// Restricts to one kind (the `type` parameter), on top of any `type:` in the query.
    pub kind: Option<String>,
    pub offset: usize,
    pub limit: usize,
    /// The asker's offset from UTC, for the days of `created:` ranges.
    pub utc_offset_minutes: i32,
    pub snippets: bool,
    /// Type-ahead: the last word may be the beginning of a word (`prin` finds `printer`).
    pub prefix_last: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    pub source: String,
    pub id: String,
    pub kind: String,
    pub number: Option<String>,
    pub title: String,
    pub status: String,
    pub score: f32,
    /// HTML: the matched words in `<b>`, everything else escaped.
    pub snippet: String,
    /// HTML: the title with the matched words in `<b>`, everything else escaped.
    pub title_html: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Results {
    /// Hits the asker may see, counted after the permission check.
    pub total: usize,
    pub hits: Vec<Hit>,
    pub by_kind: Vec<(String, usize)>,
    pub by_status: Vec<(String, usize)>,
}

/// tantivy's smallest heap per indexing thread; a follower's batch stays far below it.
const LIVE_WRITER_HEAP: usize = 15_000_000;
const BUILD_WRITER_HEAP: usize = 50_000_000;

#[derive(Debug, Clone, Copy)]
enum Writer {
    Live,
    Build,
}

/// The index of one process: a tantivy index in a directory (or in memory for tests), one
/// writer, and a reader reloaded after each commit so changes are searchable at once.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    f: Fields,
}

impl SearchIndex {
    /// Opens the live index in `dir`, creating it when the directory is empty: one indexing
    /// thread with a small heap, as a follower commits a few hundred records at a time.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::with(Self::open_dir(dir)?, Writer::Live)
    }

    /// Opens a new index in `dir` for a bulk build (`add`, then `commit` and `finish`): one
    /// indexing thread per core, with a larger heap, for the one-off run.
    pub fn open_for_build(dir: &Path) -> Result<Self> {
        Self::with(Self::open_dir(dir)?, Writer::Build)
    }

    fn open_dir(dir: &Path) -> Result<Index> {
        std::fs::create_dir_all(dir).map_err(|e| SearchError::Directory(format!("{}: {e}", dir.display())))?;
        let (schema, _) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir).map_err(|e| SearchError::Directory(e.to_string()))?;
        Ok(Index::open_or_create(directory, schema)?)
    }

    pub fn in_memory() -> Result<Self> {
        let (schema, _) = schema();
        Self::with(Index::create_in_ram(schema), Writer::Live)
    }

    fn with(index: Index, kind: Writer) -> Result<Self> {
        index.tokenizers().register(INDEX_TOKENIZER, KeelTokenizer::new(Mode::Index));
        let (_, f) = schema();
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let writer = match kind {
            Writer::Live => index.writer_with_num_threads(1, LIVE_WRITER_HEAP)?,
            Writer::Build => index.writer(BUILD_WRITER_HEAP)?,
        };
        Ok(SearchIndex { index, reader, writer: Mutex::new(writer), f })
    }

    /// The follower position committed with the index (tantivy's commit payload).
    pub fn position(&self) -> Result<Option<String>> {
        Ok(self.index.load_metas()?.payload)
    }

    fn document(&self, d: &Document) -> TantivyDocument {
        let f = &self.f;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.key, key_of(&d.source, &d.id));
        doc.add_text(f.source, &d.source);
        doc.add_text(f.id, &d.id);
        doc.add_text(f.kind, &d.kind);
        if let Some(n) = &d.number {
            doc.add_text(f.number, n);
        }
        let title = match &d.number {
            Some(n) => format!("{n} {}", d.title),
            None => d.title.clone(),
        };
        doc.add_text(f.title, title);
        doc.add_text(f.body, &d.body);
        for c in &d.comments {
            doc.add_text(f.comments, c);
        }
        for c in &d.internal {
            doc.add_text(f.internal, c);
        }
        for a in &d.attachments {
            doc.add_text(f.attachments, a);
        }
        doc.add_text(f.status, d.status.to_lowercase());
        doc.add_text(f.priority, d.priority.to_lowercase());
        doc.add_text(f.team, d.team.to_lowercase());
        doc.add_text(f.project, d.project.to_lowercase());
        doc.add_text(f.project_id, &d.project_id);
        doc.add_text(f.organization_id, &d.organization_id);
        doc.add_i64(f.created, d.created_at);
        doc.add_i64(f.updated, d.updated_at);
        doc
    }

    /// Applies changes and commits them together with the follower `position`: both are
    /// durable at once or not at all.
    pub fn apply(&self, changes: &[Change], position: &str) -> Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        for c in changes {
            match c {
                Change::Upsert(d) => {
                    w.delete_term(Term::from_field_text(self.f.key, &key_of(&d.source, &d.id)));
                    w.add_document(self.document(d))?;
                }
                Change::Delete { source, id } => {
                    w.delete_term(Term::from_field_text(self.f.key, &key_of(source, id)));
                }
            }
        }
        let mut prepared = w.prepare_commit()?;
        prepared.set_payload(position);
        prepared.commit()?;
        drop(w);
        self.reader.reload()?;
        Ok(())
    }

    /// Adds documents without committing (bulk builds); `apply` or `commit` makes them durable.
    pub fn add(&self, docs: &[Document]) -> Result<()> {
        let w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        for d in docs {
            w.add_document(self.document(d))?;
        }
        Ok(())
    }

    pub fn commit(&self, position: &str) -> Result<()> {
        self.apply(&[], position)
    }

    /// Waits for background merges, so the directory can be handed over.
    pub fn finish(self) -> Result<()> {
        let w = self.writer.into_inner().unwrap_or_else(|e| e.into_inner());
        w.wait_merging_threads()?;
        Ok(())
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn text_fields(&self, p: &dyn Permission) -> Vec<(Field, f32)> {
        let f = &self.f;
        let mut v = vec![(f.title, 3.0), (f.body, 1.0), (f.comments, 0.8), (f.attachments, 1.0)];
        if p.sees_internal() {
            v.push((f.internal, 0.6));
        }
        v
    }

    fn text_query(&self, text: &str, fields: &[(Field, f32)]) -> Option<Box<dyn Query>> {
        let tokens = KeelTokenizer::new(Mode::Query).analyze(text);
        if tokens.is_empty() {
            return None;
        }
        let mut per_field: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for &(field, boost) in fields {
            let q: Box<dyn Query> = if tokens.len() == 1 {
                Box::new(TermQuery::new(Term::from_field_text(field, &tokens[0].text), IndexRecordOption::WithFreqs))
            } else {
                let base = tokens[0].position;
                let mut terms: Vec<(usize, Term)> =
                    tokens.iter().map(|t| (t.position - base, Term::from_field_text(field, &t.text))).collect();
                terms.dedup_by(|a, b| a.0 == b.0);
                if terms.len() == 1 {
                    Box::new(TermQuery::new(terms.remove(0).1, IndexRecordOption::WithFreqs))
                } else {
                    Box::new(PhraseQuery::new_with_offset(terms))
                }
            };
            per_field.push((Occur::Should, Box::new(BoostQuery::new(q, boost))));
        }
        if let Some(n) = tokens.first().filter(|_| tokens.len() == 1) {
            per_field.push((
                Occur::Should,
                Box::new(TermQuery::new(Term::from_field_text(self.f.number, &n.text.to_uppercase()), IndexRecordOption::Basic)),
            ));
        }
        Some(Box::new(BooleanQuery::new(per_field)))
    }

    /// The title beginning with what is typed: earlier words whole, the last one as a prefix.
    fn title_prefix_query(&self, text: &str) -> Option<Box<dyn Query>> {
        let tokens = KeelTokenizer::new(Mode::Query).analyze(text);
        let (last, rest) = tokens.split_last()?;
        let base = tokens[0].position;
        let mut terms: Vec<(usize, Term)> =
            rest.iter().map(|t| (t.position - base, Term::from_field_text(self.f.title, &t.text))).collect();
        let typed = text[last.offset_from..last.offset_to].to_lowercase();
        terms.push((last.position - base, Term::from_field_text(self.f.title, &typed)));
        Some(Box::new(PhrasePrefixQuery::new_with_offset(terms)))
    }

    fn build(&self, parsed: &ParsedQuery, req: &SearchRequest, p: &dyn Permission) -> Box<dyn Query> {
        let fields = self.text_fields(p);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut positive = false;
        let typing = req.prefix_last && !req.query.ends_with(char::is_whitespace);
        for (i, c) in parsed.clauses.iter().enumerate() {
            if typing
                && i + 1 == parsed.clauses.len()
                && let Clause::Text { text, exclude: false, phrase: false } = c
                && let Some(prefix) = self.title_prefix_query(text)
            {
                let mut either: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, prefix)];
                if let Some(q) = self.text_query(text, &fields) {
                    either.push((Occur::Should, q));
                }
                clauses.push((Occur::Must, Box::new(BooleanQuery::new(either))));
                positive = true;
                continue;
            }
            match c {
                Clause::Text { text, exclude, .. } => match self.text_query(text, &fields) {
                    Some(q) => {
                        positive |= !exclude;
                        clauses.push((if *exclude { Occur::MustNot } else { Occur::Must }, q));
                    }
                    None if !exclude => return Box::new(EmptyQuery),
                    None => {}
                },
                Clause::Filter { field, value, exclude } => {
                    let schema_field = self.index.schema().get_field(field.field_name()).expect("filter fields are in the schema");
                    let q = TermQuery::new(Term::from_field_text(schema_field, &value.to_lowercase()), IndexRecordOption::Basic);
                    clauses.push((if *exclude { Occur::MustNot } else { Occur::Must }, Box::new(q)));
                }
                Clause::Created { from, to } => {
                    let day = |d: chrono::NaiveDate| {
                        d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis() - i64::from(req.utc_offset_minutes) * 60_000)
                    };
                    let lo = from
                        .and_then(day)
                        .map_or(std::ops::Bound::Unbounded, |v| std::ops::Bound::Included(Term::from_field_i64(self.f.created, v)));
                    let hi = to
                        .and_then(day)
                        .map_or(std::ops::Bound::Unbounded, |v| std::ops::Bound::Excluded(Term::from_field_i64(self.f.created, v)));
                    clauses.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
                }
            }
        }
        if let Some(k) = req.kind.as_deref().filter(|k| !k.is_empty()) {
            clauses.push((Occur::Must, Box::new(TermQuery::new(Term::from_field_text(self.f.kind, k), IndexRecordOption::Basic))));
        }
        if !positive {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        Box::new(BooleanQuery::new(clauses))
    }

    /// Runs a query for an asker: only hits `p` allows are returned or counted, and snippets
    /// come only from fields the asker may read.
    pub fn search(&self, req: &SearchRequest, p: Arc<dyn Permission>) -> Result<Results> {
        let parsed = query::parse(&req.query);
        if parsed.clauses.is_empty() && req.kind.is_none() {
            return Ok(Results::default());
        }
        let q = self.build(&parsed, req, &*p);
        let searcher = self.reader.searcher();
        let limit = req.limit.clamp(1, 100);
        let Hits { top, total, by_kind, by_status } =
            searcher.search(&q, &HitCollector { keep: req.offset + limit, permission: p.clone() })?;
        let mut gens = Vec::new();
        let mut title_gen = None;
        if req.snippets {
            let mut g = SnippetGenerator::create(&searcher, &*q, self.f.title)?;
            g.set_max_num_chars(MAX_TITLE_CHARS);
            title_gen = Some(g);
            for (field, _) in self.text_fields(&*p) {
                let mut g = SnippetGenerator::create(&searcher, &*q, field)?;
                g.set_max_num_chars(160);
                gens.push((field, g));
            }
        }
        let mut hits = Vec::new();
        for (score, addr) in top.into_iter().skip(req.offset).take(limit) {
            hits.push(self.hit(&searcher, addr, score, &gens, title_gen.as_ref())?);
        }
        Ok(Results { total, hits, by_kind, by_status })
    }

    fn hit(
        &self,
        searcher: &tantivy::Searcher,
        addr: DocAddress,
        score: f32,
        gens: &[(Field, SnippetGenerator)],
        title_gen: Option<&SnippetGenerator>,
    ) -> Result<Hit> {
        let doc: TantivyDocument = searcher.doc(addr)?;
        let f = &self.f;
        let text = |field: Field| doc.get_first(field).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let mut snippet = String::new();
        for (field, g) in gens {
            let s = g.snippet_from_doc(&doc);
            if !s.highlighted().is_empty() && *field != f.title {
                snippet = snippet_html(s.fragment(), s.highlighted());
                break;
            }
        }
        if snippet.is_empty() && !gens.is_empty() {
            let body = text(f.body);
            let short: String = body.chars().take(160).collect();
            snippet = html_escape(&short);
        }
        let number = doc.get_first(f.number).and_then(|v| v.as_str()).map(str::to_string);
        let full_title = text(f.title);
        let mut title = full_title.clone();
        if let Some(n) = &number {
            title = title.strip_prefix(n.as_str()).map(|t| t.trim_start().to_string()).unwrap_or(title);
        }
        let mut title_html = html_escape(&title);
        if let Some(g) = title_gen {
            let s = g.snippet_from_doc(&doc);
            if s.fragment() == full_title {
                // The stored title starts with the number, which the hit shows apart.
                let cut = full_title.len() - title.len();
                let ranges: Vec<_> = s.highlighted().iter().filter(|r| r.start >= cut).map(|r| (r.start - cut)..(r.end - cut)).collect();
                title_html = snippet_html(&title, &ranges);
            }
        }
        Ok(Hit {
            source: text(f.source),
            id: text(f.id),
            kind: text(f.kind),
            number,
            title,
            status: text(f.status),
            score,
            snippet,
            title_html,
            created_at: doc.get_first(f.created).and_then(|v| v.as_i64()).unwrap_or_default(),
        })
    }
}

/// The fragment as HTML with the matched words in `<b>`. Tantivy's own `to_html` can panic
/// when overlapping Chinese tokens (search mode yields `服务` inside `服务器`) start before the
/// fragment: such ranges are dropped here, the others merged.
/// Titles longer than this are shown without highlighting.
const MAX_TITLE_CHARS: usize = 1_000;

fn snippet_html(fragment: &str, highlighted: &[std::ops::Range<usize>]) -> String {
    let mut ranges: Vec<_> = highlighted
        .iter()
        .filter(|r| r.start < r.end && r.end <= fragment.len() && fragment.is_char_boundary(r.start) && fragment.is_char_boundary(r.end))
        .cloned()
        .collect();
    ranges.sort_by_key(|r| r.start);
    let mut html = String::new();
    let mut at = 0;
    for r in ranges {
        if r.end <= at {
            continue;
        }
        let start = r.start.max(at);
        html.push_str(&html_escape(&fragment[at..start]));
        html.push_str("<b>");
        html.push_str(&html_escape(&fragment[start..r.end]));
        html.push_str("</b>");
        at = r.end;
    }
    html.push_str(&html_escape(&fragment[at..]));
    html
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests;
