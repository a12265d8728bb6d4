//! Change management: risk assessment (风险评估) by a questionnaire whose weighted answers add
//! up to a score, mapped to a risk level by configurable thresholds.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Errors, FieldError};
use crate::validate::Locale;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
    VeryHigh,
}

impl RiskLevel {
    pub const ALL: [RiskLevel; 4] = [RiskLevel::Low, RiskLevel::Medium, RiskLevel::High, RiskLevel::VeryHigh];

    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
            RiskLevel::VeryHigh => "very_high",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    pub fn label(self, locale: Locale) -> &'static str {
        match (self, locale) {
            (RiskLevel::Low, Locale::En) => "Low",
            (RiskLevel::Medium, Locale::En) => "Medium",
            (RiskLevel::High, Locale::En) => "High",
            (RiskLevel::VeryHigh, Locale::En) => "Very high",
            (RiskLevel::Low, Locale::ZhCn) => "低",
            (RiskLevel::Medium, Locale::ZhCn) => "中",
            (RiskLevel::High, Locale::ZhCn) => "高",
            (RiskLevel::VeryHigh, Locale::ZhCn) => "极高",
        }
    }
}

/// The lowest score of each level above `low`; they must strictly increase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskThresholds {
    pub medium: u32,
    pub high: u32,
    pub very_high: u32,
}

impl RiskThresholds {
    pub fn new(medium: u32, high: u32, very_high: u32) -> Result<Self, DomainError> {
        if !(0 < medium && medium < high && high < very_high) {
            return Err(DomainError::field("thresholds", "invalid_thresholds", "thresholds must satisfy 0 < medium < high < very high"));
        }
        Ok(RiskThresholds { medium, high, very_high })
    }

    pub fn level(&self, score: u32) -> RiskLevel {
        if score >= self.very_high {
            RiskLevel::VeryHigh
        } else if score >= self.high {
            RiskLevel::High
        } else if score >= self.medium {
            RiskLevel::Medium
        } else {
            RiskLevel::Low
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerOption {
    pub key: String,
    pub text_en: String,
    pub text_zh: String,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    pub key: String,
    pub text_en: String,
    pub text_zh: String,
    pub answers: Vec<AnswerOption>,
}

impl Question {
    pub fn text(&self, locale: Locale) -> &str {
        match locale {
            Locale::En => &self.text_en,
            Locale::ZhCn => &self.text_zh,
        }
    }
    fn max_weight(&self) -> u32 {
        self.answers.iter().map(|a| a.weight).max().unwrap_or(0)
    }
}

impl AnswerOption {
    pub fn text(&self, locale: Locale) -> &str {
        match locale {
            Locale::En => &self.text_en,
            Locale::ZhCn => &self.text_zh,
        }
    }
}

/// A risk questionnaire: every question must be answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Questionnaire {
    pub questions: Vec<Question>,
    pub thresholds: RiskThresholds,
}

/// The result of answering a questionnaire, kept on the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskAssessment {
    pub answers: BTreeMap<String, String>,
    pub score: u32,
    pub max_score: u32,
    pub level: RiskLevel,
}

impl Questionnaire {
    /// Checks the questionnaire: unique question keys, at least two answers each with unique
    /// keys, texts in both languages, and thresholds the highest possible score can reach.
    pub fn new(questions: Vec<Question>, thresholds: RiskThresholds) -> Result<Self, DomainError> {
        let mut errors = Errors::new();
        if questions.is_empty() {
            errors.push(FieldError::new("questions", "required", "a questionnaire needs at least one question"));
        }
        let mut keys = HashSet::new();
        for (i, q) in questions.iter().enumerate() {
            let at = |f: &str| format!("questions[{i}].{f}");
            if q.key.trim().is_empty() || !keys.insert(q.key.as_str()) {
                errors.push(FieldError::new(at("key"), "duplicate_key", "each question needs its own key"));
            }
            if q.text_en.trim().is_empty() || q.text_zh.trim().is_empty() {
                errors.push(FieldError::new(at("text"), "required", "question text is required in English and Chinese"));
            }
            if q.answers.len() < 2 {
                errors.push(FieldError::new(at("answers"), "too_few_answers", "a question needs at least two answers"));
            }
            let mut answer_keys = HashSet::new();
            for (j, a) in q.answers.iter().enumerate() {
                if a.key.trim().is_empty() || !answer_keys.insert(a.key.as_str()) {
                    errors.push(FieldError::new(at(&format!("answers[{j}].key")), "duplicate_key", "each answer needs its own key"));
                }
                if a.text_en.trim().is_empty() || a.text_zh.trim().is_empty() {
                    errors.push(FieldError::new(
                        at(&format!("answers[{j}].text")),
                        "required",
                        "answer text is required in English and Chinese",
                    ));
                }
            }
        }
        let q = Questionnaire { questions, thresholds };
        if q.max_score() < thresholds.very_high {
            errors.push(FieldError::new(
                "thresholds",
                "unreachable_threshold",
                "the very high threshold exceeds the highest possible score",
            ));
        }
        errors.finish()?;
        Ok(q)
    }

    pub fn max_score(&self) -> u32 {
        self.questions.iter().map(Question::max_weight).sum()
    }

    /// Scores `answers` (question key → answer key). Every question must be answered, with one
    /// of its answers; every problem is reported under the question's key.
    pub fn assess(&self, answers: &BTreeMap<String, String>) -> Result<RiskAssessment, DomainError> {
        let mut errors = Errors::new();
        for key in answers.keys() {
            if !self.questions.iter().any(|q| &q.key == key) {
                errors.push(FieldError::new(key, "unknown_question", "no such question"));
            }
        }
        let mut score = 0u32;
        for q in &self.questions {
            match answers.get(&q.key) {
                None => errors.push(FieldError::new(&q.key, "required", "this question must be answered")),
                Some(a) => match q.answers.iter().find(|o| &o.key == a) {
                    Some(o) => score += o.weight,
                    None => errors.push(FieldError::new(&q.key, "invalid_answer", format!("{a} is not an answer to this question"))),
                },
            }
        }
        errors.finish()?;
        Ok(RiskAssessment { answers: answers.clone(), score, max_score: self.max_score(), level: self.thresholds.level(score) })
    }

    /// The questionnaire Keel ships with.
    pub fn default_questionnaire() -> Self {
        let q = |key: &str, en: &str, zh: &str, answers: &[(&str, &str, &str, u32)]| Question {
            key: key.into(),
            text_en: en.into(),
            text_zh: zh.into(),
            answers: answers
                .iter()
                .map(|(k, en, zh, w)| AnswerOption { key: (*k).into(), text_en: (*en).into(), text_zh: (*zh).into(), weight: *w })
                .collect(),
        };
        let questions = vec![
            q(
                "service_criticality",
                "How critical are the affected services?",
                "受影响服务的关键程度如何？",
                &[("low", "Low", "低", 0), ("medium", "Medium", "中", 2), ("high", "High", "高", 4), ("critical", "Critical", "关键", 6)],
            ),
            q(
                "scope",
                "Who is affected?",
                "影响范围有多大？",
                &[
                    ("none", "No users", "不影响用户", 0),
                    ("team", "One team or site", "单个团队或站点", 1),
                    ("customer", "One customer", "单个客户", 3),
                    ("customers", "Several customers", "多个客户", 5),
                ],
            ),
            q(
                "outage",
                "Is service interrupted during implementation?",
                "实施期间服务是否中断？",
                &[
                    ("none", "No interruption", "不中断", 0),
                    ("degraded", "Degraded service", "服务降级", 2),
                    ("partial", "Partial outage", "部分中断", 3),
                    ("full", "Full outage", "完全中断", 5),
                ],
            ),
            q(
                "complexity",
                "How complex is the implementation?",
                "实施的复杂程度如何？",
                &[
                    ("simple", "Simple, few steps", "简单，步骤少", 0),
                    ("moderate", "Moderate", "中等", 2),
                    ("complex", "Complex, several teams or suppliers", "复杂，涉及多个小组或供应商", 4),
                ],
            ),
            q(
                "experience",
                "Has this change been carried out before?",
                "此类变更以前是否实施过？",
                &[
                    ("routine", "Routinely", "经常实施", 0),
                    ("occasionally", "A few times", "实施过几次", 1),
                    ("never", "Never", "从未实施", 3),
                ],
            ),
            q(
                "testing",
                "Was the change tested in a non-production environment?",
                "变更是否已在非生产环境中测试？",
                &[
                    ("full", "Fully tested", "已充分测试", 0),
                    ("partial", "Partially tested", "部分测试", 2),
                    ("none", "Not tested", "未测试", 4),
                ],
            ),
            q(
                "back_out",
                "Can the change be backed out?",
                "变更能否回退？",
                &[
                    ("tested", "Yes, back-out plan tested", "能，回退计划已测试", 0),
                    ("untested", "Yes, back-out plan not tested", "能，回退计划未测试", 2),
                    ("impossible", "No", "不能回退", 5),
                ],
            ),
            q(
                "security",
                "Does the change affect security controls or personal data?",
                "变更是否涉及安全控制或个人数据？",
                &[("no", "No", "否", 0), ("yes", "Yes", "是", 3)],
            ),
            q(
                "timing",
                "When is it implemented?",
                "在什么时间实施？",
                &[
                    ("outside_hours", "Outside service hours", "服务时间以外", 0),
                    ("service_hours", "During service hours", "服务时间内", 3),
                ],
            ),
        ];
        let thresholds = RiskThresholds { medium: 8, high: 16, very_high: 26 };
        Questionnaire::new(questions, thresholds).expect("the default questionnaire is consistent")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(q, a)| (q.to_string(), a.to_string())).collect()
    }

    fn lowest(q: &Questionnaire) -> BTreeMap<String, String> {
        q.questions.iter().map(|x| (x.key.clone(), x.answers.iter().min_by_key(|a| a.weight).unwrap().key.clone())).collect()
    }

    #[test]
    fn default_questionnaire_scores_and_levels() {
        let q = Questionnaire::default_questionnaire();
        assert_eq!(q.max_score(), 38);
        let low = q.assess(&lowest(&q)).unwrap();
        assert_eq!((low.score, low.level), (0, RiskLevel::Low));
        let highest: BTreeMap<String, String> =
            q.questions.iter().map(|x| (x.key.clone(), x.answers.iter().max_by_key(|a| a.weight).unwrap().key.clone())).collect();
        let top = q.assess(&highest).unwrap();
        assert_eq!((top.score, top.level, top.max_score), (38, RiskLevel::VeryHigh, 38));
        let mut mid = lowest(&q);
        mid.insert("service_criticality".into(), "critical".into());
        mid.insert("testing".into(), "partial".into());
        let a = q.assess(&mid).unwrap();
        assert_eq!((a.score, a.level), (8, RiskLevel::Medium));
        assert!(q.questions.iter().all(|x| !x.text(Locale::ZhCn).is_empty() && x.text(Locale::ZhCn) != x.text(Locale::En)));
    }

    #[test]
    fn thresholds_map_scores_to_levels() {
        let t = RiskThresholds::new(5, 10, 15).unwrap();
        let levels: Vec<RiskLevel> = [0, 4, 5, 9, 10, 14, 15, 99].into_iter().map(|s| t.level(s)).collect();
        use RiskLevel::*;
        assert_eq!(levels, vec![Low, Low, Medium, Medium, High, High, VeryHigh, VeryHigh]);
        assert!(RiskThresholds::new(5, 5, 15).is_err());
        assert!(RiskThresholds::new(0, 5, 15).is_err());
        assert!(RiskThresholds::new(9, 5, 15).is_err());
        for l in RiskLevel::ALL {
            assert_eq!(RiskLevel::parse(l.as_str()), Some(l));
        }
    }

    #[test]
    fn every_answer_problem_is_reported() {
        let q = Questionnaire::default_questionnaire();
        let mut a = lowest(&q);
        a.remove("scope");
        a.insert("outage".into(), "sometimes".into());
        a.insert("mood".into(), "good".into());
        let DomainError::Invalid(errs) = q.assess(&a).unwrap_err() else { panic!() };
        let mut got: Vec<(&str, &str)> = errs.iter().map(|e| (e.field.as_str(), e.code)).collect();
        got.sort();
        assert_eq!(got, vec![("mood", "unknown_question"), ("outage", "invalid_answer"), ("scope", "required")]);
        assert!(q.assess(&answers(&[])).is_err());
    }

    #[test]
    fn bad_questionnaires_are_refused() {
        let opt = |k: &str, w| AnswerOption { key: k.into(), text_en: k.into(), text_zh: k.into(), weight: w };
        let good = Question { key: "a".into(), text_en: "A?".into(), text_zh: "甲？".into(), answers: vec![opt("x", 0), opt("y", 5)] };
        assert!(Questionnaire::new(vec![good.clone()], RiskThresholds::new(1, 2, 5).unwrap()).is_ok());
        let unreachable = Questionnaire::new(vec![good.clone()], RiskThresholds::new(1, 2, 6).unwrap()).unwrap_err();
        assert!(matches!(unreachable, DomainError::Invalid(v) if v[0].code == "unreachable_threshold"));
        let bad = Question { key: "a".into(), text_en: "".into(), text_zh: "".into(), answers: vec![opt("x", 9)] };
        let DomainError::Invalid(v) = Questionnaire::new(vec![good, bad], RiskThresholds::new(1, 2, 5).unwrap()).unwrap_err() else {
            panic!()
        };
        let codes: Vec<&str> = v.iter().map(|e| e.code).collect();
        assert_eq!(codes, vec!["duplicate_key", "required", "too_few_answers"]);
    }
}
