//! Collects the hits the asker may see: every matching document is checked against the
//! asker's rights before it is ranked or counted, so totals and facets never reveal records
//! the asker may not read.

use crate::{Access, Permission};
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

pub(crate) struct HitCollector {
    pub keep: usize,
    pub permission: Arc<dyn Permission>,
}

pub(crate) struct Hits {
    pub top: Vec<(Score, DocAddress)>,
    pub total: usize,
    pub by_kind: Vec<(String, usize)>,
    pub by_status: Vec<(String, usize)>,
}

#[derive(PartialEq)]
struct Ranked(Score, DocAddress);
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked {
    // Reversed: the heap's top is the weakest hit kept, the first to drop.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.0.total_cmp(&self.0).then_with(|| self.1.cmp(&o.1))
    }
}

pub(crate) struct SegmentHits {
    segment: SegmentOrdinal,
    keep: usize,
    permission: Arc<dyn Permission>,
    kind: StrColumn,
    status: StrColumn,
    id: StrColumn,
    project: StrColumn,
    org: StrColumn,
    decided: HashMap<(u64, u64, u64, u64), bool, BuildHasherDefault<Fnv>>,
    /// The last decision, reused while consecutive hits share kind, project and organisation.
    last: Option<((u64, u64, u64, u64), bool)>,
    kind_needs_id: HashMap<u64, bool>,
    heap: BinaryHeap<Ranked>,
    total: usize,
    /// Counts by term ordinal (the last slot for documents without a value).
    kinds: Vec<usize>,
    statuses: Vec<usize>,
}

/// FNV-1a: the decision cache is keyed by small integers and looked up for every match.
#[derive(Default)]
pub(crate) struct Fnv(u64);
impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
    fn write_u64(&mut self, v: u64) {
        let h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        self.0 = (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
    }
}

pub(crate) struct SegmentFruit {
    top: Vec<Ranked>,
    total: usize,
    kinds: Vec<(String, usize)>,
    statuses: Vec<(String, usize)>,
}

fn column(reader: &SegmentReader, name: &str) -> tantivy::Result<StrColumn> {
    reader.fast_fields().str(name)?.ok_or_else(|| tantivy::TantivyError::SchemaError(format!("{name} is not a fast field")))
}

fn text_of(col: &StrColumn, ord: u64) -> String {
    let mut s = String::new();
    let _ = col.ord_to_str(ord, &mut s);
    s
}

const NONE: u64 = u64::MAX;

impl Collector for HitCollector {
    type Fruit = Hits;
    type Child = SegmentHits;

    fn for_segment(&self, segment: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<SegmentHits> {
        let kind = column(reader, "kind")?;
        let status = column(reader, "status")?;
        let (kinds, statuses) = (vec![0; kind.num_terms() + 1], vec![0; status.num_terms() + 1]);
        Ok(SegmentHits {
            segment,
            keep: self.keep,
            permission: self.permission.clone(),
            kind,
            status,
            id: column(reader, "id")?,
            project: column(reader, "project_id")?,
            org: column(reader, "organization_id")?,
            decided: HashMap::default(),
            last: None,
            kind_needs_id: HashMap::new(),
            heap: BinaryHeap::new(),
            total: 0,
            kinds,
            statuses,
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<SegmentFruit>) -> tantivy::Result<Hits> {
        let mut all: Vec<Ranked> = Vec::new();
        let mut total = 0;
        let mut kinds: HashMap<String, usize> = HashMap::new();
        let mut statuses: HashMap<String, usize> = HashMap::new();
        for f in fruits {
            all.extend(f.top);
            total += f.total;
            for (k, n) in f.kinds {
                *kinds.entry(k).or_default() += n;
            }
            for (k, n) in f.statuses {
                *statuses.entry(k).or_default() += n;
            }
        }
        all.sort();
        all.truncate(self.keep);
        let sorted = |m: HashMap<String, usize>| {
            let mut v: Vec<_> = m.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v
        };
        Ok(Hits { top: all.into_iter().map(|r| (r.0, r.1)).collect(), total, by_kind: sorted(kinds), by_status: sorted(statuses) })
    }
}

impl SegmentHits {
    fn allowed(&mut self, doc: DocId) -> (bool, u64) {
        let kind = self.kind.ords().first(doc).unwrap_or(NONE);
        let needs_id = *self.kind_needs_id.entry(kind).or_insert_with(|| self.permission.needs_id(&text_of(&self.kind, kind)));
        let project = self.project.ords().first(doc).unwrap_or(NONE);
        let org = self.org.ords().first(doc).unwrap_or(NONE);
        let id = if needs_id { self.id.ords().first(doc).unwrap_or(NONE) } else { NONE };
        let key = (kind, project, org, id);
        if let Some((k, d)) = self.last
            && k == key
        {
            return (d, kind);
        }
        if let Some(&d) = self.decided.get(&key) {
            self.last = Some((key, d));
            return (d, kind);
        }
        let access = Access {
            kind: text_of(&self.kind, kind),
            id: if needs_id { text_of(&self.id, id) } else { String::new() },
            project_id: text_of(&self.project, project),
            organization_id: text_of(&self.org, org),
        };
        let d = self.permission.allows(&access);
        self.decided.insert(key, d);
        self.last = Some((key, d));
        (d, kind)
    }
}

impl SegmentCollector for SegmentHits {
    type Fruit = SegmentFruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        let (ok, kind) = self.allowed(doc);
        if !ok {
            return;
        }
        self.total += 1;
        let k = usize::try_from(kind).unwrap_or(usize::MAX).min(self.kinds.len() - 1);
        self.kinds[k] += 1;
        let st = self.status.ords().first(doc).and_then(|o| usize::try_from(o).ok()).unwrap_or(usize::MAX).min(self.statuses.len() - 1);
        self.statuses[st] += 1;
        let r = Ranked(score, DocAddress::new(self.segment, doc));
        if self.heap.len() < self.keep {
            self.heap.push(r);
        } else if self.heap.peek().is_some_and(|w| r < *w) {
            self.heap.pop();
            self.heap.push(r);
        }
    }

    fn harvest(self) -> SegmentFruit {
        let named = |col: &StrColumn, v: Vec<usize>| {
            let none = v.len() - 1;
            v.into_iter()
                .enumerate()
                .filter(|(_, n)| *n > 0)
                .map(|(o, n)| (if o == none { String::new() } else { text_of(col, o as u64) }, n))
                .collect()
        };
        SegmentFruit {
            kinds: named(&self.kind, self.kinds),
            statuses: named(&self.status, self.statuses),
            top: self.heap.into_vec(),
            total: self.total,
        }
    }
}
