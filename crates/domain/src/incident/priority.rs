//! Incident management: impact (影响度) × urgency (紧急度) → priority (优先级), through a
//! priority matrix the administrator configures.

use crate::error::{DomainError, Errors, FieldError};
use serde::{Deserialize, Serialize};

stable_str_enum! {
    /// How much of the business a ticket affects. Level 1 is the highest.
    pub enum Impact {
        High => "high",
        Medium => "medium",
        Low => "low",
    }
}

stable_str_enum! {
    /// How soon the business needs it fixed. Level 1 is the highest.
    pub enum Urgency {
        High => "high",
        Medium => "medium",
        Low => "low",
    }
}

stable_str_enum! {
    /// P1 is the most urgent. SLA targets are set per priority.
    pub enum Priority {
        P1 => "p1",
        P2 => "p2",
        P3 => "p3",
        P4 => "p4",
    }
}

fn level_of(i: usize) -> u8 {
    u8::try_from(i + 1).unwrap_or(u8::MAX)
}

/// Parses a name (`high`) or a level (`1`), as forms and imports use either.
fn parse_level<T: Copy>(all: &[T], as_str: fn(T) -> &'static str, field: &str, s: &str) -> Result<T, FieldError> {
    let s = s.trim();
    let by_level = s.parse::<usize>().ok().and_then(|n| n.checked_sub(1)).and_then(|i| all.get(i).copied());
    by_level
        .or_else(|| all.iter().copied().find(|v| as_str(*v).eq_ignore_ascii_case(s)))
        .ok_or_else(|| FieldError::new(field, "invalid_choice", format!("{field} must be high, medium or low (or 1 to {})", all.len())))
}

impl Impact {
    pub fn level(self) -> u8 {
        level_of(self as usize)
    }
    pub fn from_input(field: &str, s: &str) -> Result<Self, FieldError> {
        parse_level(Self::ALL, Self::as_str, field, s)
    }
}

impl Urgency {
    pub fn level(self) -> u8 {
        level_of(self as usize)
    }
    pub fn from_input(field: &str, s: &str) -> Result<Self, FieldError> {
        parse_level(Self::ALL, Self::as_str, field, s)
    }
}

impl Priority {
    pub fn level(self) -> u8 {
        level_of(self as usize)
    }
    /// The label people say: `P1`.
    pub fn label(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
        }
    }
    pub fn from_input(field: &str, s: &str) -> Result<Self, FieldError> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        Self::parse(&lower)
            .or_else(|| s.parse::<usize>().ok().and_then(|n| n.checked_sub(1)).and_then(|i| Self::ALL.get(i).copied()))
            .ok_or_else(|| FieldError::new(field, "invalid_choice", format!("{field} must be P1, P2, P3 or P4")))
    }
}

/// One cell of the matrix, the unit an administrator edits and configuration stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixCell {
    pub impact: Impact,
    pub urgency: Urgency,
    pub priority: Priority,
}

/// A total map impact × urgency → priority. It can only be built with every cell defined,
/// and with no cell less urgent than a cell of lower impact or urgency (see [`Self::from_cells`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<MatrixCell>", into = "Vec<MatrixCell>")]
pub struct PriorityMatrix {
    cells: [[Priority; 3]; 3],
}

impl Default for PriorityMatrix {
    /// The usual ITIL matrix: P1 only when both are high, P4 when both are at most medium-low.
    fn default() -> Self {
        use Priority::*;
        PriorityMatrix { cells: [[P1, P2, P3], [P2, P3, P4], [P3, P4, P4]] }
    }
}

fn cell_field(impact: Impact, urgency: Urgency) -> String {
    format!("priority_matrix.{}.{}", impact.as_str(), urgency.as_str())
}

impl PriorityMatrix {
    pub fn priority(&self, impact: Impact, urgency: Urgency) -> Priority {
        self.cells[impact as usize][urgency as usize]
    }

    /// All nine cells, impact-major, highest first: the order an editor shows them.
    pub fn cells(&self) -> Vec<MatrixCell> {
        Impact::ALL
            .iter()
            .flat_map(|&impact| Urgency::ALL.iter().map(move |&urgency| (impact, urgency)))
            .map(|(impact, urgency)| MatrixCell { impact, urgency, priority: self.priority(impact, urgency) })
            .collect()
    }

    /// Builds a matrix from an administrator's cells. Every cell must be given exactly once, and
    /// raising impact or urgency must never lower the priority: a matrix that does is almost
    /// always a slip of the mouse, and it would make SLA targets contradict each other.
    pub fn from_cells(cells: impl IntoIterator<Item = MatrixCell>) -> Result<Self, DomainError> {
        let mut grid: [[Option<Priority>; 3]; 3] = [[None; 3]; 3];
        let mut errors = Errors::new();
        for c in cells {
            let slot = &mut grid[c.impact as usize][c.urgency as usize];
            if slot.is_some_and(|p| p != c.priority) {
                errors.push(FieldError::new(
                    cell_field(c.impact, c.urgency),
                    "duplicate_cell",
                    "this impact and urgency are given two different priorities",
                ));
            }
            *slot = Some(c.priority);
        }
        for &impact in Impact::ALL {
            for &urgency in Urgency::ALL {
                if grid[impact as usize][urgency as usize].is_none() {
                    errors.push(FieldError::new(cell_field(impact, urgency), "required", "every cell of the matrix needs a priority"));
                }
            }
        }
        for i in 0..3 {
            for u in 0..3 {
                let Some(p) = grid[i][u] else { continue };
                let above = i.checked_sub(1).and_then(|j| grid[j][u]);
                let left = u.checked_sub(1).and_then(|j| grid[i][j]);
                if above.into_iter().chain(left).any(|q| q > p) {
                    errors.push(FieldError::new(
                        cell_field(Impact::ALL[i], Urgency::ALL[u]),
                        "not_monotonic",
                        "a cell cannot be more urgent than one with higher impact or urgency",
                    ));
                }
            }
        }
        errors.finish()?;
        let mut out = PriorityMatrix::default();
        for (i, row) in grid.iter().enumerate() {
            for (u, p) in row.iter().enumerate() {
                if let Some(p) = p {
                    out.cells[i][u] = *p;
                }
            }
        }
        Ok(out)
    }
}

impl TryFrom<Vec<MatrixCell>> for PriorityMatrix {
    type Error = DomainError;
    fn try_from(cells: Vec<MatrixCell>) -> Result<Self, DomainError> {
        PriorityMatrix::from_cells(cells)
    }
}

impl From<PriorityMatrix> for Vec<MatrixCell> {
    fn from(m: PriorityMatrix) -> Self {
        m.cells()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn codes(e: DomainError) -> Vec<(String, &'static str)> {
        match e {
            DomainError::Invalid(v) => v.into_iter().map(|f| (f.field, f.code)).collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn default_matrix_is_the_usual_one() {
        let m = PriorityMatrix::default();
        assert_eq!(m.priority(Impact::High, Urgency::High), Priority::P1);
        assert_eq!(m.priority(Impact::High, Urgency::Medium), Priority::P2);
        assert_eq!(m.priority(Impact::Medium, Urgency::High), Priority::P2);
        assert_eq!(m.priority(Impact::Medium, Urgency::Medium), Priority::P3);
        assert_eq!(m.priority(Impact::High, Urgency::Low), Priority::P3);
        assert_eq!(m.priority(Impact::Low, Urgency::Low), Priority::P4);
        assert_eq!(PriorityMatrix::from_cells(m.cells()).unwrap(), m);
    }

    #[test]
    fn missing_duplicate_and_inverted_cells_are_reported_together() {
        let mut cells = PriorityMatrix::default().cells();
        cells.retain(|c| !(c.impact == Impact::Low && c.urgency == Urgency::Low));
        cells.push(MatrixCell { impact: Impact::High, urgency: Urgency::High, priority: Priority::P2 });
        let errs = codes(PriorityMatrix::from_cells(cells).unwrap_err());
        assert!(errs.contains(&("priority_matrix.low.low".into(), "required")));
        assert!(errs.contains(&("priority_matrix.high.high".into(), "duplicate_cell")));

        let mut cells = PriorityMatrix::default().cells();
        cells.iter_mut().find(|c| c.impact == Impact::Low && c.urgency == Urgency::Low).unwrap().priority = Priority::P1;
        assert_eq!(codes(PriorityMatrix::from_cells(cells).unwrap_err()), vec![("priority_matrix.low.low".into(), "not_monotonic")]);
    }

    #[test]
    fn repeating_a_cell_with_the_same_priority_is_harmless() {
        let mut cells = PriorityMatrix::default().cells();
        cells.push(cells[0]);
        assert!(PriorityMatrix::from_cells(cells).is_ok());
    }

    #[test]
    fn serde_round_trip_validates() {
        let json = serde_json::to_string(&PriorityMatrix::default()).unwrap();
        assert!(json.contains(r#"{"impact":"high","urgency":"high","priority":"p1"}"#));
        assert_eq!(serde_json::from_str::<PriorityMatrix>(&json).unwrap(), PriorityMatrix::default());
        assert!(serde_json::from_str::<PriorityMatrix>(r#"[{"impact":"high","urgency":"high","priority":"p1"}]"#).is_err());
    }

    #[test]
    fn levels_and_input_forms() {
        assert_eq!(Impact::from_input("impact", "1").unwrap(), Impact::High);
        assert_eq!(Impact::from_input("impact", " Low ").unwrap(), Impact::Low);
        assert_eq!(Urgency::from_input("urgency", "2").unwrap(), Urgency::Medium);
        assert_eq!(Urgency::from_input("urgency", "0").unwrap_err().code, "invalid_choice");
        assert_eq!(Urgency::from_input("urgency", "4").unwrap_err().code, "invalid_choice");
        assert_eq!(Priority::from_input("priority", "P2").unwrap(), Priority::P2);
        assert_eq!(Priority::from_input("priority", "4").unwrap(), Priority::P4);
        assert!(Priority::from_input("priority", "p5").is_err());
        assert_eq!((Impact::High.level(), Urgency::Low.level(), Priority::P4.level()), (1, 3, 4));
        assert_eq!(Priority::P1.label(), "P1");
        assert_eq!(Priority::parse_field("priority", "x").unwrap_err().message, "priority must be one of: p1, p2, p3, p4");
    }

    fn any_priority() -> impl Strategy<Value = Priority> {
        prop::sample::select(Priority::ALL.to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any complete matrix is accepted exactly when it is monotonic, and is then total.
        #[test]
        fn complete_matrices_are_total(ps in prop::collection::vec(any_priority(), 9)) {
            let cells: Vec<MatrixCell> = Impact::ALL.iter()
                .flat_map(|&impact| Urgency::ALL.iter().map(move |&urgency| (impact, urgency)))
                .zip(ps.iter())
                .map(|((impact, urgency), &priority)| MatrixCell { impact, urgency, priority })
                .collect();
            let monotonic = (0..3).all(|i| (0..3).all(|u| {
                let p = ps[i * 3 + u];
                (i == 0 || ps[(i - 1) * 3 + u] <= p) && (u == 0 || ps[i * 3 + u - 1] <= p)
            }));
            match PriorityMatrix::from_cells(cells.clone()) {
                Ok(m) => {
                    prop_assert!(monotonic);
                    for c in &cells {
                        prop_assert_eq!(m.priority(c.impact, c.urgency), c.priority);
                    }
                    prop_assert_eq!(m.cells(), cells);
                }
                Err(e) => {
                    prop_assert!(!monotonic);
                    prop_assert!(codes(e).iter().all(|(_, code)| *code == "not_monotonic"));
                }
            }
        }

        /// Leaving cells out is always refused, naming exactly the missing cells.
        #[test]
        fn incomplete_matrices_name_missing_cells(keep in prop::collection::vec(any::<bool>(), 9)) {
            prop_assume!(keep.iter().any(|k| !k));
            let all = PriorityMatrix::default().cells();
            let kept: Vec<MatrixCell> = all.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| *c).collect();
            let missing: Vec<String> = all.iter().zip(&keep).filter(|(_, k)| !**k)
                .map(|(c, _)| cell_field(c.impact, c.urgency)).collect();
            let errs = codes(PriorityMatrix::from_cells(kept).unwrap_err());
            let required: Vec<String> = errs.into_iter().filter(|(_, c)| *c == "required").map(|(f, _)| f).collect();
            prop_assert_eq!(required, missing);
        }
    }
}
