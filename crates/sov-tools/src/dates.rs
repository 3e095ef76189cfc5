//! `dates`: calendar arithmetic on ISO dates (`YYYY-MM-DD`, proleptic Gregorian, years 1 to
//! 9999): the days, weeks and business days between two dates, a date plus years, months,
//! weeks and days, a date plus business days, and a date's weekday. Business days are Monday
//! to Friday, less the `holidays` given. Adding months keeps the day of the month, or the
//! month's last day when it has fewer (31 January + 1 month is 28 or 29 February), and says so.

use serde_json::{Value, json};
use time::{Date, Duration, Month, Weekday};

use crate::json::args;
use crate::{Tool, ToolError, ToolSpec};

/// The most holidays one call may list.
const MAX_HOLIDAYS: usize = 1_000;
/// The most business days one call may add.
const MAX_BUSINESS_DAYS: i64 = 100_000;

#[derive(serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Op {
    Difference {
        from: String,
        to: String,
        #[serde(default)]
        holidays: Vec<String>,
    },
    Add {
        date: String,
        #[serde(default)]
        years: i32,
        #[serde(default)]
        months: i32,
        #[serde(default)]
        weeks: i64,
        #[serde(default)]
        days: i64,
    },
    AddBusinessDays {
        date: String,
        days: i64,
        #[serde(default)]
        holidays: Vec<String>,
    },
    Weekday {
        date: String,
    },
}

fn date(field: &str, s: &str) -> Result<Date, ToolError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let d = Date::parse(s.trim(), &format).map_err(|e| {
        ToolError::Arguments(format!("{field}: `{s}` is not a date as YYYY-MM-DD ({e})"))
    })?;
    if d.year() < 1 {
        return Err(ToolError::Arguments(format!(
            "{field}: years before 1 are not supported"
        )));
    }
    Ok(d)
}

fn holidays(list: &[String]) -> Result<Vec<Date>, ToolError> {
    if list.len() > MAX_HOLIDAYS {
        return Err(ToolError::Arguments(format!(
            "holidays: at most {MAX_HOLIDAYS} dates"
        )));
    }
    list.iter().map(|h| date("holidays", h)).collect()
}

fn iso(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn out_of_range() -> ToolError {
    ToolError::Failed("the date would fall outside the years 1 to 9999".into())
}

fn is_business(d: Date, holidays: &[Date]) -> bool {
    !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) && !holidays.contains(&d)
}

/// Business days `d` with `from <= d < to` (negative when `to` is before `from`).
pub fn business_days(from: Date, to: Date, holidays: &[Date]) -> i64 {
    if to < from {
        return -business_days(to, from, holidays);
    }
    let days = (to - from).whole_days();
    let mut count = days / 7 * 5;
    let mut d = from + Duration::days(days / 7 * 7);
    while d < to {
        if !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
            count += 1;
        }
        d = d.next_day().unwrap_or(to);
    }
    let mut seen: Vec<Date> = holidays.to_vec();
    seen.sort();
    seen.dedup();
    let off = seen
        .iter()
        .filter(|h| **h >= from && **h < to && is_business(**h, &[]))
        .count();
    count - off as i64
}

fn add_months(d: Date, months: i64) -> Result<(Date, bool), ToolError> {
    let total = i64::from(d.year()) * 12 + i64::from(u8::from(d.month())) - 1 + months;
    let year = i32::try_from(total.div_euclid(12)).map_err(|_| out_of_range())?;
    let month = u8::try_from(total.rem_euclid(12) + 1).map_err(|_| out_of_range())?;
    let month = Month::try_from(month).map_err(|_| out_of_range())?;
    if !(1..=9999).contains(&year) {
        return Err(out_of_range());
    }
    let last = time::util::days_in_month(month, year);
    let day = d.day().min(last);
    let out = Date::from_calendar_date(year, month, day).map_err(|_| out_of_range())?;
    Ok((out, day != d.day()))
}

fn run(op: Op) -> Result<Value, ToolError> {
    match op {
        Op::Difference {
            from,
            to,
            holidays: h,
        } => {
            let (f, t) = (date("from", &from)?, date("to", &to)?);
            let h = holidays(&h)?;
            let days = (t - f).whole_days();
            Ok(json!({
                "days": days,
                "weeks": days / 7,
                "remainder_days": days % 7,
                "business_days": business_days(f, t, &h),
            }))
        }
        Op::Add {
            date: d,
            years,
            months,
            weeks,
            days,
        } => {
            let d = date("date", &d)?;
            let months = i64::from(years) * 12 + i64::from(months);
            let (d, clamped) = add_months(d, months)?;
            let shift = weeks
                .checked_mul(7)
                .and_then(|w| w.checked_add(days))
                .filter(|s| s.abs() <= 3_660_000)
                .ok_or_else(out_of_range)?;
            let out = d
                .checked_add(Duration::days(shift))
                .filter(|d| d.year() >= 1 && d.year() <= 9999)
                .ok_or_else(out_of_range)?;
            Ok(json!({
                "date": iso(out),
                "weekday": out.weekday().to_string(),
                "clamped_to_month_end": clamped,
            }))
        }
        Op::AddBusinessDays {
            date: d,
            days,
            holidays: h,
        } => {
            if days.abs() > MAX_BUSINESS_DAYS {
                return Err(ToolError::Arguments(format!(
                    "days: at most {MAX_BUSINESS_DAYS} business days"
                )));
            }
            let mut d = date("date", &d)?;
            let h = holidays(&h)?;
            let step = if days < 0 { -1 } else { 1 };
            let mut left = days.abs();
            while left > 0 {
                d = d
                    .checked_add(Duration::days(step))
                    .filter(|d| d.year() >= 1)
                    .ok_or_else(out_of_range)?;
                if is_business(d, &h) {
                    left -= 1;
                }
            }
            Ok(json!({"date": iso(d), "weekday": d.weekday().to_string()}))
        }
        Op::Weekday { date: d } => {
            let d = date("date", &d)?;
            Ok(json!({"date": iso(d), "weekday": d.weekday().to_string()}))
        }
    }
}

/// The `dates` tool.
#[derive(Debug)]
pub struct Dates {
    spec: ToolSpec,
}

impl Dates {
    /// The tool.
    pub fn new() -> Self {
        let date = json!({"type": "string", "description": "YYYY-MM-DD"});
        let list = json!({"type": "array", "items": {"type": "string"}, "maxItems": MAX_HOLIDAYS});
        Self {
            spec: ToolSpec {
                name: "dates".into(),
                description: "Calendar arithmetic on YYYY-MM-DD dates: `difference` (days, weeks \
                    and business days between two dates), `add` (years, months, weeks, days), \
                    `add_business_days` (Monday to Friday, less holidays), `weekday`."
                    .into(),
                parameters: json!({
                    "type": "object",
                    "oneOf": [
                        {"properties": {"op": {"const": "difference"}, "from": date, "to": date, "holidays": list},
                         "required": ["op", "from", "to"], "additionalProperties": false},
                        {"properties": {"op": {"const": "add"}, "date": date, "years": {"type": "integer"},
                                        "months": {"type": "integer"}, "weeks": {"type": "integer"},
                                        "days": {"type": "integer"}},
                         "required": ["op", "date"], "additionalProperties": false},
                        {"properties": {"op": {"const": "add_business_days"}, "date": date,
                                        "days": {"type": "integer"}, "holidays": list},
                         "required": ["op", "date", "days"], "additionalProperties": false},
                        {"properties": {"op": {"const": "weekday"}, "date": date},
                         "required": ["op", "date"], "additionalProperties": false}
                    ]
                }),
            },
        }
    }
}

impl Default for Dates {
    fn default() -> Self {
        Self::new()
    }
}

impl Tool for Dates {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }
    fn version(&self) -> String {
        crate::builtin_version()
    }
    fn call(&self, a: &Value) -> Result<Value, ToolError> {
        run(args(a)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn call(a: Value) -> Result<Value, ToolError> {
        Dates::new().call(&a)
    }

    #[test]
    fn differences_and_business_days() {
        let r =
            call(json!({"op": "difference", "from": "2026-01-01", "to": "2026-03-01"})).unwrap();
        assert_eq!(r["days"], 59);
        // 2026-01-01 is a Thursday: 8 weeks and 3 days, 42 weekdays
        assert_eq!(r["business_days"], 42);
        let r = call(
            json!({"op": "difference", "from": "2026-12-21", "to": "2026-12-28",
                            "holidays": ["2026-12-25", "2026-12-26", "2026-12-25"]}),
        )
        .unwrap();
        // Mon-Fri, less Friday the 25th (the 26th is a Saturday)
        assert_eq!(r["business_days"], 4);
        let r =
            call(json!({"op": "difference", "from": "2026-03-01", "to": "2026-01-01"})).unwrap();
        assert_eq!(r["days"], -59);
        assert_eq!(r["business_days"], -42);
    }

    #[test]
    fn additions() {
        let r = call(json!({"op": "add", "date": "2026-01-31", "months": 1})).unwrap();
        assert_eq!(r["date"], "2026-02-28");
        assert_eq!(r["clamped_to_month_end"], true);
        let r = call(json!({"op": "add", "date": "2024-02-29", "years": 1})).unwrap();
        assert_eq!(r["date"], "2025-02-28");
        let r = call(json!({"op": "add", "date": "2026-12-04", "days": 30})).unwrap();
        assert_eq!(r["date"], "2027-01-03");
        let r = call(json!({"op": "add_business_days", "date": "2026-12-04", "days": 1})).unwrap();
        assert_eq!(r["date"], "2026-12-07");
        assert_eq!(r["weekday"], "Monday");
        let r = call(json!({"op": "add_business_days", "date": "2026-12-07", "days": -1})).unwrap();
        assert_eq!(r["date"], "2026-12-04");
        let r = call(json!({"op": "weekday", "date": "2026-12-04"})).unwrap();
        assert_eq!(r["weekday"], "Friday");
    }

    #[test]
    fn bad_dates_are_named() {
        let e = call(json!({"op": "weekday", "date": "2026-02-30"})).unwrap_err();
        assert!(e.to_string().contains("`2026-02-30` is not a date"), "{e}");
        let e = call(json!({"op": "add", "date": "9999-12-31", "days": 1})).unwrap_err();
        assert!(e.to_string().contains("outside the years"), "{e}");
        let e = call(json!({"op": "add", "date": "2026-01-01", "years": 2147483647})).unwrap_err();
        assert!(e.to_string().contains("outside the years"), "{e}");
        let e = call(json!({"op": "explode", "date": "2026-01-01"})).unwrap_err();
        assert!(matches!(e, ToolError::Arguments(_)), "{e}");
        let e = call(json!({"op": "weekday", "date": "2026-01-01", "extra": 1})).unwrap_err();
        assert!(matches!(e, ToolError::Arguments(_)), "{e}");
        let e = call(json!({"op": "add_business_days", "date": "2026-01-01", "days": 10000000}))
            .unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
    }
}
