//! Service desk: how the pure rules learn whether referenced records exist, without a database.

use crate::error::FieldError;

/// The kinds of record a ticket or problem refers to by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ref {
    Project,
    /// A person who can report: a customer contact or a staff member.
    Person,
    /// A staff member who can be assigned work.
    Agent,
    Team,
    Category,
    Service,
    CatalogueItem,
    ConfigurationItem,
    Incident,
    Problem,
    Change,
}

/// Answers "does this record exist (and may it be referenced here)?". The application looks the
/// ids up beforehand (the domain never queries); any `Fn(Ref, &str) -> bool` will do.
pub trait References {
    fn exists(&self, kind: Ref, id: &str) -> bool;
}

impl<F: Fn(Ref, &str) -> bool> References for F {
    fn exists(&self, kind: Ref, id: &str) -> bool {
        self(kind, id)
    }
}

/// Longest id accepted in a reference field (UUIDs and ULIDs are far shorter).
pub const MAX_ID_LEN: usize = 64;

/// Checks one optional reference: blank means "none"; otherwise it must be a plausible id of an
/// existing record.
pub fn optional_ref(refs: &impl References, kind: Ref, field: &str, id: Option<&str>) -> Result<Option<String>, FieldError> {
    match id.map(str::trim) {
        None | Some("") => Ok(None),
        Some(id) => required_ref(refs, kind, field, id).map(Some),
    }
}

/// Checks one required reference.
pub fn required_ref(refs: &impl References, kind: Ref, field: &str, id: &str) -> Result<String, FieldError> {
    let id = id.trim();
    if id.is_empty() {
        return Err(FieldError::new(field, "required", format!("{field} is required")));
    }
    if id.len() > MAX_ID_LEN || id.chars().any(|c| c.is_whitespace() || c.is_control()) || !refs.exists(kind, id) {
        return Err(FieldError::new(field, "not_found", format!("{field} does not refer to an existing record")));
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_trimmed_and_looked_up() {
        let refs = |k: Ref, id: &str| k == Ref::Category && id == "c1";
        assert_eq!(optional_ref(&refs, Ref::Category, "category_id", Some(" c1 ")).unwrap(), Some("c1".into()));
        assert_eq!(optional_ref(&refs, Ref::Category, "category_id", Some("  ")).unwrap(), None);
        assert_eq!(optional_ref(&refs, Ref::Service, "service_id", Some("c1")).unwrap_err().code, "not_found");
        assert_eq!(required_ref(&refs, Ref::Category, "category_id", "").unwrap_err().code, "required");
        assert_eq!(required_ref(&refs, Ref::Category, "category_id", "c 1").unwrap_err().code, "not_found");
    }
}
