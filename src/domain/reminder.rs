//! The expiry-reminder schedule (seed guide, section 5; DESIGN.md section 3, Reminders): a pure
//! function from the secrets, their usage, what was sent and today's date to the notices due.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use uuid::Uuid;

/// A reminder notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Notice {
    /// D-42: "expires in 42 days".
    SixWeeks,
    /// D-21: "expires in 21 days".
    ThreeWeeks,
    /// D-7: "expires in 7 days".
    OneWeek,
    /// D-n for n = 6 … 1: "expires in n days" ("in 1 day").
    Daily(u8),
    /// D: "expires today".
    LastDay,
    /// D+1, due until D+7: "has expired".
    Expired,
    /// Once D-42 is reached and a newer secret is in use: "was replaced: delete it".
    RotationComplete,
}

impl Notice {
    /// The stored key: `6w`, `3w`, `1w`, `d6` … `d1`, `d0`, `expired`, `rotation`.
    pub fn key(self) -> String {
        match self {
            Notice::SixWeeks => "6w".into(),
            Notice::ThreeWeeks => "3w".into(),
            Notice::OneWeek => "1w".into(),
            Notice::Daily(n) => format!("d{n}"),
            Notice::LastDay => "d0".into(),
            Notice::Expired => "expired".into(),
            Notice::RotationComplete => "rotation".into(),
        }
    }

    /// The notice for people, without dates: "6 weeks before expiry", "3 days before expiry",
    /// "on the expiration date", "after expiry", "rotation complete" (the audit log's words).
    pub fn label(self) -> String {
        match self {
            Notice::SixWeeks => "6 weeks before expiry".into(),
            Notice::ThreeWeeks => "3 weeks before expiry".into(),
            Notice::OneWeek => "1 week before expiry".into(),
            Notice::Daily(1) => "1 day before expiry".into(),
            Notice::Daily(n) => format!("{n} days before expiry"),
            Notice::LastDay => "on the expiration date".into(),
            Notice::Expired => "after expiry".into(),
            Notice::RotationComplete => "rotation complete: delete the old secret".into(),
        }
    }

    /// Parses [`Notice::key`].
    pub fn parse(key: &str) -> Option<Self> {
        Some(match key {
            "6w" => Notice::SixWeeks,
            "3w" => Notice::ThreeWeeks,
            "1w" => Notice::OneWeek,
            "d0" => Notice::LastDay,
            "expired" => Notice::Expired,
            "rotation" => Notice::RotationComplete,
            other => {
                let n: u8 = other.strip_prefix('d')?.parse().ok()?;
                if !(1..=6).contains(&n) {
                    return None;
                }
                Notice::Daily(n)
            }
        })
    }

    /// The schedule's name of the notice, as DESIGN.md section 3's table gives it ("expires in 42
    /// days", ..., "has expired", "was replaced: delete it"): which notice it is, not what a
    /// late one says (that is [`Notice::wording`]).
    pub fn schedule_name(self) -> String {
        match self {
            Notice::SixWeeks => "expires in 42 days".into(),
            Notice::ThreeWeeks => "expires in 21 days".into(),
            Notice::OneWeek => "expires in 7 days".into(),
            Notice::Daily(1) => "expires in 1 day".into(),
            Notice::Daily(n) => format!("expires in {n} days"),
            Notice::LastDay => "expires today".into(),
            Notice::Expired => "has expired".into(),
            Notice::RotationComplete => "was replaced: delete it".into(),
        }
    }

    /// What the notice says on the day it is sent, `days_left` (D minus the send date, in UTC
    /// days) before its secret's expiration date: the real count, so a notice sent late (after
    /// downtime, or for a secret created inside a window) never promises more days than are left
    /// (DESIGN.md section 12). The one wording of the subject, the body's headline and the admin
    /// reminders page: "expires in 5 days", "expires in 1 day", "expires today", "has expired",
    /// "was replaced: delete it".
    pub fn wording(self, days_left: super::DaysLeft) -> String {
        match (self, days_left.days()) {
            (Notice::RotationComplete, _) => "was replaced: delete it".into(),
            (Notice::Expired, _) | (_, ..0) => "has expired".into(),
            (_, 0) => "expires today".into(),
            (_, 1) => "expires in 1 day".into(),
            (_, days) => format!("expires in {days} days"),
        }
    }

    /// The notice's name for people, e.g. "3-week notice", "daily notice (D-3)".
    pub fn title(self) -> String {
        match self {
            Notice::SixWeeks => "6-week notice".into(),
            Notice::ThreeWeeks => "3-week notice".into(),
            Notice::OneWeek => "1-week notice".into(),
            Notice::Daily(n) => format!("daily notice (D-{n})"),
            Notice::LastDay => "last-day notice".into(),
            Notice::Expired => "expired notice".into(),
            Notice::RotationComplete => "rotation-complete notice".into(),
        }
    }

    /// The countdown notices in date order with the day each becomes due (offset from D).
    pub fn countdown() -> [(Notice, i64); 11] {
        [
            (Notice::SixWeeks, -42),
            (Notice::ThreeWeeks, -21),
            (Notice::OneWeek, -7),
            (Notice::Daily(6), -6),
            (Notice::Daily(5), -5),
            (Notice::Daily(4), -4),
            (Notice::Daily(3), -3),
            (Notice::Daily(2), -2),
            (Notice::Daily(1), -1),
            (Notice::LastDay, 0),
            (Notice::Expired, 1),
        ]
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// The last day the expired notice is still due: D+7.
pub const EXPIRED_NOTICE_UNTIL: i64 = 7;

/// What the schedule needs to know of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretUsage {
    /// The secret.
    pub id: Uuid,
    /// Its application.
    pub application_id: Uuid,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its expiration date D.
    pub expires_on: NaiveDate,
    /// First successful use at the token endpoint.
    pub first_used_at: Option<DateTime<Utc>>,
    /// Latest successful use.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The countdown notice whose window holds `today`, if any: each notice is due from its date until
/// the next notice's date (the expired notice until D+7). Only this one may go out, so after
/// downtime only the latest due notice is sent.
pub fn current_countdown_notice(expires_on: NaiveDate, today: NaiveDate) -> Option<(Notice, NaiveDate)> {
    let offset = (today - expires_on).num_days();
    if offset > EXPIRED_NOTICE_UNTIL {
        return None;
    }
    Notice::countdown()
        .into_iter()
        .rev()
        .find(|(_, due)| *due <= offset)
        .map(|(n, due)| (n, expires_on + Duration::days(due)))
}

/// Whether `secret` is replaced: the application has a newer secret (created later, expiring
/// later, not deleted) that has been used at the token endpoint, and `secret` was not used since
/// that newer secret's first use (DESIGN.md section 3, Replaced).
pub fn is_replaced(secret: &SecretUsage, siblings: &[SecretUsage]) -> bool {
    siblings.iter().any(|n| {
        n.id != secret.id
            && n.application_id == secret.application_id
            && n.created_at > secret.created_at
            && n.expires_on > secret.expires_on
            && n.first_used_at.is_some_and(|first| secret.last_used_at.is_none_or(|last| last < first))
    })
}

/// The notice due for one secret today, given the notices already sent for it.
///
/// - Replaced and D-42 reached: the one "rotation complete" notice (never twice), nothing else;
///   a replaced secret gets no "expired" notice.
/// - Otherwise the countdown notice whose window holds today, when its date is on or after the
///   secret's creation date and it was not sent yet.
pub fn due_notice(secret: &SecretUsage, replaced: bool, sent: &HashSet<Notice>, today: NaiveDate) -> Option<Notice> {
    let (notice, date) = current_countdown_notice(secret.expires_on, today)?;
    if replaced {
        return (!sent.contains(&Notice::RotationComplete)).then_some(Notice::RotationComplete);
    }
    let eligible = date >= secret.created_at.date_naive();
    (eligible && !sent.contains(&notice)).then_some(notice)
}

/// Every notice due today across `secrets` (all undeleted secrets of the applications
/// concerned, so the replaced rule sees every sibling), given what was sent: pairs of (secret id,
/// notice), in the order of `secrets`. Linear in the number of secrets (siblings are looked up per
/// application).
pub fn due_notices(secrets: &[SecretUsage], sent: &HashSet<(Uuid, Notice)>, today: NaiveDate) -> Vec<(Uuid, Notice)> {
    let mut by_application: HashMap<Uuid, Vec<SecretUsage>> = HashMap::new();
    for s in secrets {
        by_application.entry(s.application_id).or_default().push(s.clone());
    }
    let mut sent_by_secret: HashMap<Uuid, HashSet<Notice>> = HashMap::new();
    for (id, n) in sent {
        sent_by_secret.entry(*id).or_default().insert(*n);
    }
    let none = HashSet::new();
    secrets
        .iter()
        .filter(|s| current_countdown_notice(s.expires_on, today).is_some())
        .filter_map(|s| {
            let siblings = by_application.get(&s.application_id).map_or(&[][..], Vec::as_slice);
            let mine = sent_by_secret.get(&s.id).unwrap_or(&none);
            due_notice(s, is_replaced(s, siblings), mine, today).map(|n| (s.id, n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    #[test]
    fn late_notices_say_the_days_really_left() {
        let left = |n| crate::domain::DaysLeft::between(d("2026-12-01"), d("2026-12-01") + Duration::days(n));
        // Late 3-week and 1-week notices (after downtime, or a secret created inside a window).
        assert_eq!(Notice::ThreeWeeks.wording(left(19)), "expires in 19 days");
        assert_eq!(Notice::OneWeek.wording(left(5)), "expires in 5 days");
        assert_eq!(Notice::OneWeek.wording(left(1)), "expires in 1 day");
        assert_eq!(Notice::SixWeeks.wording(left(0)), "expires today");
        // On time they say what the schedule names them.
        for (notice, due) in Notice::countdown() {
            assert_eq!(notice.wording(left(-due)), notice.schedule_name(), "{notice}");
        }
        assert_eq!(Notice::RotationComplete.wording(left(30)), "was replaced: delete it");
        assert_eq!(Notice::Daily(2).wording(left(-1)), "has expired");
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn secret(created: &str, expires: &str) -> SecretUsage {
        SecretUsage {
            id: Uuid::new_v4(),
            application_id: Uuid::nil(),
            created_at: d(created).and_hms_opt(9, 0, 0).unwrap().and_utc(),
            expires_on: d(expires),
            first_used_at: None,
            last_used_at: None,
        }
    }

    /// Runs the schedule once a day from `from` to `to` and returns (date, notice) as sent.
    fn walk(s: &SecretUsage, from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, Notice)> {
        let mut sent = HashSet::new();
        let mut out = Vec::new();
        let mut day = from;
        while day <= to {
            if let Some(n) = due_notice(s, false, &sent, day) {
                sent.insert(n);
                out.push((day, n));
            }
            day = day.succ_opt().unwrap();
        }
        out
    }

    #[test]
    fn the_schedule_table() {
        let s = secret("2026-01-01", "2026-12-31");
        let got: Vec<(String, String)> = walk(&s, d("2026-11-01"), d("2027-01-31"))
            .into_iter()
            .map(|(day, n)| (day.to_string(), n.schedule_name()))
            .collect();
        let expected = [
            ("2026-11-19", "expires in 42 days"),
            ("2026-12-10", "expires in 21 days"),
            ("2026-12-24", "expires in 7 days"),
            ("2026-12-25", "expires in 6 days"),
            ("2026-12-26", "expires in 5 days"),
            ("2026-12-27", "expires in 4 days"),
            ("2026-12-28", "expires in 3 days"),
            ("2026-12-29", "expires in 2 days"),
            ("2026-12-30", "expires in 1 day"),
            ("2026-12-31", "expires today"),
            ("2027-01-01", "has expired"),
        ];
        assert_eq!(got, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    }

    #[test]
    fn a_notice_dated_before_creation_is_never_sent() {
        // Created today with D = today + 7: "1 week" today.
        let s = secret("2026-12-24", "2026-12-31");
        assert_eq!(walk(&s, d("2026-12-24"), d("2026-12-24")), vec![(d("2026-12-24"), Notice::OneWeek)]);
        // Created 10 days before expiry: starts at the next due notice, 1 week at D-7.
        let s = secret("2026-12-21", "2026-12-31");
        let got = walk(&s, d("2026-12-21"), d("2026-12-31"));
        assert_eq!(got.first(), Some(&(d("2026-12-24"), Notice::OneWeek)));
        assert!(!got.iter().any(|(_, n)| *n == Notice::ThreeWeeks));
    }

    #[test]
    fn after_downtime_only_the_latest_due_notice_goes_out() {
        let s = secret("2026-01-01", "2026-12-31");
        let mut sent = HashSet::new();
        // Down from before D-42 until D-3: only "in 3 days".
        assert_eq!(due_notice(&s, false, &sent, d("2026-12-28")), Some(Notice::Daily(3)));
        sent.insert(Notice::Daily(3));
        assert_eq!(due_notice(&s, false, &sent, d("2026-12-28")), None);
        // The expired notice stays due until D+7, not after.
        assert_eq!(due_notice(&s, false, &HashSet::new(), d("2027-01-07")), Some(Notice::Expired));
        assert_eq!(due_notice(&s, false, &HashSet::new(), d("2027-01-08")), None);
    }

    #[test]
    fn replaced_secrets_get_one_rotation_notice_and_no_expired_one() {
        let app = Uuid::new_v4();
        let mut old = secret("2026-01-01", "2026-12-31");
        old.application_id = app;
        old.last_used_at = Some(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap());
        let mut new = secret("2026-11-10", "2027-11-10");
        new.application_id = app;
        let today = d("2026-11-25");
        assert!(!is_replaced(&old, &[old.clone(), new.clone()]), "the new one was never used");
        new.first_used_at = Some(Utc.with_ymd_and_hms(2026, 11, 12, 0, 0, 0).unwrap());
        assert!(is_replaced(&old, &[old.clone(), new.clone()]));
        let mut sent = HashSet::new();
        assert_eq!(due_notice(&old, true, &sent, today), Some(Notice::RotationComplete));
        sent.insert(Notice::RotationComplete);
        assert_eq!(due_notice(&old, true, &sent, today), None);
        assert_eq!(due_notice(&old, true, &sent, d("2027-01-02")), None, "no expired notice");
        // Before D-42 nothing, not even the rotation notice.
        assert_eq!(due_notice(&old, true, &HashSet::new(), d("2026-11-18")), None);
        // Used again after the newer one's first use: the countdown resumes.
        old.last_used_at = Some(Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap());
        assert!(!is_replaced(&old, &[old.clone(), new.clone()]));
        assert_eq!(due_notice(&old, false, &sent, d("2026-12-24")), Some(Notice::OneWeek));
    }

    #[test]
    fn keys_round_trip() {
        for (n, _) in Notice::countdown() {
            assert_eq!(Notice::parse(&n.key()), Some(n));
        }
        assert_eq!(Notice::parse("rotation"), Some(Notice::RotationComplete));
        assert_eq!(Notice::parse("d7"), None);
    }

    #[test]
    fn a_29_february_expiry_counts_calendar_days() {
        let s = secret("2027-03-01", "2028-02-29");
        let got = walk(&s, d("2028-01-01"), d("2028-03-10"));
        assert_eq!(got[0], (d("2028-01-18"), Notice::SixWeeks));
        assert!(got.contains(&(d("2028-02-28"), Notice::Daily(1))));
        assert!(got.contains(&(d("2028-02-29"), Notice::LastDay)));
        assert!(got.contains(&(d("2028-03-01"), Notice::Expired)));
    }

    proptest! {
        /// For any history of runs (any times, any gaps), each notice goes out at most once, and at
        /// every run the notice due then has gone out (it is never skipped).
        #[test]
        fn each_notice_at_most_once_and_the_due_one_never_skipped(
            created_days_before in 0i64..400,
            gaps in proptest::collection::vec(0i64..20, 1..60),
        ) {
            let expires = d("2027-06-15");
            let s = secret(&(expires - Duration::days(created_days_before)).to_string(), "2027-06-15");
            let mut sent: HashSet<Notice> = HashSet::new();
            let mut day = s.created_at.date_naive();
            for gap in gaps {
                day += Duration::days(gap);
                if let Some(n) = due_notice(&s, false, &sent, day) {
                    prop_assert!(sent.insert(n), "{n:?} went out twice");
                }
                if let Some((n, date)) = current_countdown_notice(expires, day) {
                    if date >= s.created_at.date_naive() {
                        prop_assert!(sent.contains(&n), "{n:?} due on {day} was skipped");
                    }
                }
            }
        }
    }
}
