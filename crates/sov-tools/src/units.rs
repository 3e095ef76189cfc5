//! `units`: conversion between units of one dimension by exact factors (the international
//! yard and pound, US liquid measures, SI and binary prefixes for data), and temperatures
//! (Celsius, Fahrenheit, Kelvin) by their exact affine relations. `{"value": 12.5, "from":
//! "mi", "to": "km", "places": 3}`; the result is exact unless rounded to `places`.

use num_rational::BigRational;
use serde_json::{Value, json};

use crate::calc::{self, eval};
use crate::json::{Decimal, args};
use crate::{Tool, ToolError, ToolSpec};

/// A unit: its names, its dimension and its size in the dimension's base unit.
struct Unit {
    names: &'static [&'static str],
    dimension: &'static str,
    factor: &'static str,
}

const fn u(names: &'static [&'static str], dimension: &'static str, factor: &'static str) -> Unit {
    Unit {
        names,
        dimension,
        factor,
    }
}

const LB: &str = "0.45359237";
const UNITS: &[Unit] = &[
    u(&["m", "meter", "meters", "metre", "metres"], "length", "1"),
    u(
        &["km", "kilometer", "kilometers", "kilometre", "kilometres"],
        "length",
        "1000",
    ),
    u(
        &[
            "cm",
            "centimeter",
            "centimeters",
            "centimetre",
            "centimetres",
        ],
        "length",
        "1/100",
    ),
    u(
        &[
            "mm",
            "millimeter",
            "millimeters",
            "millimetre",
            "millimetres",
        ],
        "length",
        "1/1000",
    ),
    u(
        &["um", "µm", "micrometer", "micrometre", "micron", "microns"],
        "length",
        "1/1000000",
    ),
    u(&["nm", "nanometer", "nanometre"], "length", "1/1000000000"),
    u(&["in", "inch", "inches"], "length", "0.0254"),
    u(&["ft", "foot", "feet"], "length", "0.3048"),
    u(&["yd", "yard", "yards"], "length", "0.9144"),
    u(&["mi", "mile", "miles"], "length", "1609.344"),
    u(
        &["nmi", "nautical mile", "nautical miles"],
        "length",
        "1852",
    ),
    u(&["kg", "kilogram", "kilograms"], "mass", "1"),
    u(&["g", "gram", "grams"], "mass", "1/1000"),
    u(&["mg", "milligram", "milligrams"], "mass", "1/1000000"),
    u(&["t", "tonne", "tonnes", "metric ton"], "mass", "1000"),
    u(&["lb", "lbs", "pound", "pounds"], "mass", LB),
    u(&["oz", "ounce", "ounces"], "mass", "0.45359237/16"),
    u(&["st", "stone", "stones"], "mass", "0.45359237*14"),
    u(&["s", "sec", "second", "seconds"], "time", "1"),
    u(&["ms", "millisecond", "milliseconds"], "time", "1/1000"),
    u(&["min", "minute", "minutes"], "time", "60"),
    u(&["h", "hr", "hour", "hours"], "time", "3600"),
    u(&["d", "day", "days"], "time", "86400"),
    u(&["wk", "week", "weeks"], "time", "604800"),
    u(
        &["l", "liter", "liters", "litre", "litres"],
        "volume",
        "1/1000",
    ),
    u(
        &[
            "ml",
            "milliliter",
            "milliliters",
            "millilitre",
            "millilitres",
        ],
        "volume",
        "1/1000000",
    ),
    u(&["m3", "cubic meter", "cubic metre"], "volume", "1"),
    u(&["gal", "gallon", "gallons"], "volume", "0.003785411784"),
    u(&["qt", "quart", "quarts"], "volume", "0.003785411784/4"),
    u(&["pt", "pint", "pints"], "volume", "0.003785411784/8"),
    u(
        &["floz", "fl oz", "fluid ounce", "fluid ounces"],
        "volume",
        "0.003785411784/128",
    ),
    u(&["m2", "square meter", "square metre"], "area", "1"),
    u(
        &["km2", "square kilometer", "square kilometre"],
        "area",
        "1000000",
    ),
    u(&["ha", "hectare", "hectares"], "area", "10000"),
    u(&["acre", "acres"], "area", "4046.8564224"),
    u(&["ft2", "square foot", "square feet"], "area", "0.09290304"),
    u(
        &["mi2", "square mile", "square miles"],
        "area",
        "2589988.110336",
    ),
    u(
        &["m/s", "meters per second", "metres per second"],
        "speed",
        "1",
    ),
    u(
        &["km/h", "kph", "kilometers per hour", "kilometres per hour"],
        "speed",
        "1000/3600",
    ),
    u(&["mph", "miles per hour"], "speed", "1609.344/3600"),
    u(&["kn", "knot", "knots"], "speed", "1852/3600"),
    u(&["b", "byte", "bytes"], "data", "1"),
    u(&["bit", "bits"], "data", "1/8"),
    u(&["kb", "kilobyte", "kilobytes"], "data", "1000"),
    u(&["mb", "megabyte", "megabytes"], "data", "1000^2"),
    u(&["gb", "gigabyte", "gigabytes"], "data", "1000^3"),
    u(&["tb", "terabyte", "terabytes"], "data", "1000^4"),
    u(&["kib", "kibibyte", "kibibytes"], "data", "1024"),
    u(&["mib", "mebibyte", "mebibytes"], "data", "1024^2"),
    u(&["gib", "gibibyte", "gibibytes"], "data", "1024^3"),
    u(&["tib", "tebibyte", "tebibytes"], "data", "1024^4"),
    u(&["j", "joule", "joules"], "energy", "1"),
    u(&["kj", "kilojoule", "kilojoules"], "energy", "1000"),
    u(&["cal", "calorie", "calories"], "energy", "4.184"),
    u(&["kcal", "kilocalorie", "kilocalories"], "energy", "4184"),
    u(&["wh", "watt hour", "watt hours"], "energy", "3600"),
    u(
        &["kwh", "kilowatt hour", "kilowatt hours"],
        "energy",
        "3600000",
    ),
    u(&["pa", "pascal", "pascals"], "pressure", "1"),
    u(&["kpa", "kilopascal", "kilopascals"], "pressure", "1000"),
    u(&["bar", "bars"], "pressure", "100000"),
    u(&["atm", "atmosphere", "atmospheres"], "pressure", "101325"),
    u(&["psi"], "pressure", "0.45359237*9.80665/0.0254^2"),
];

/// Temperatures: `(names, offset, scale)` with kelvin = (value + offset) * scale.
const TEMPERATURES: &[(&[&str], &str, &str)] = &[
    (&["k", "kelvin"], "0", "1"),
    (&["c", "°c", "celsius", "degc"], "273.15", "1"),
    (&["f", "°f", "fahrenheit", "degf"], "459.67", "5/9"),
];

enum Found {
    Linear(&'static Unit),
    Temperature(&'static str, &'static str),
}

fn find(name: &str) -> Option<Found> {
    let n = name.trim().to_lowercase();
    let n = n.as_str();
    if let Some(u) = UNITS.iter().find(|u| u.names.contains(&n)) {
        return Some(Found::Linear(u));
    }
    TEMPERATURES
        .iter()
        .find(|(names, ..)| names.contains(&n))
        .map(|(_, offset, scale)| Found::Temperature(offset, scale))
}

fn exact(text: &str) -> Result<BigRational, ToolError> {
    calc::exact_value(text).map_err(|e| ToolError::Failed(format!("{text}: {e}")))
}

/// Converts `value` from one unit to another.
pub fn convert(value: &BigRational, from: &str, to: &str) -> Result<BigRational, ToolError> {
    let unknown = |u: &str| {
        ToolError::Arguments(format!(
            "unknown unit `{u}` (length, mass, time, volume, area, speed, data, energy, \
             pressure and temperature units are known, e.g. km, lb, h, gal, acre, mph, GiB, \
             kWh, psi, C)"
        ))
    };
    let f = find(from).ok_or_else(|| unknown(from))?;
    let t = find(to).ok_or_else(|| unknown(to))?;
    match (f, t) {
        (Found::Linear(a), Found::Linear(b)) => {
            if a.dimension != b.dimension {
                return Err(ToolError::Arguments(format!(
                    "`{from}` is a unit of {} and `{to}` of {}: they do not convert",
                    a.dimension, b.dimension
                )));
            }
            Ok(value * exact(a.factor)? / exact(b.factor)?)
        }
        (Found::Temperature(fo, fs), Found::Temperature(to_, ts)) => {
            let kelvin = (value + exact(fo)?) * exact(fs)?;
            Ok(kelvin / exact(ts)? - exact(to_)?)
        }
        _ => Err(ToolError::Arguments(format!(
            "`{from}` and `{to}` are not both temperatures: they do not convert"
        ))),
    }
}

/// The `units` tool.
#[derive(Debug)]
pub struct Units {
    spec: ToolSpec,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    value: Decimal,
    from: String,
    to: String,
    #[serde(default)]
    places: Option<u32>,
}

impl Units {
    /// The tool.
    pub fn new() -> Self {
        Self {
            spec: ToolSpec {
                name: "units".into(),
                description: "Converts a value between units of length, mass, time, volume, \
                    area, speed, data, energy, pressure or temperature, exactly (e.g. 12.5 mi \
                    to km). Give `places` to round the result."
                    .into(),
                parameters: json!({
                    "type": "object",
                    "properties": {
                        "value": {"type": ["number", "string"], "description": "The amount, e.g. 12.5"},
                        "from": {"type": "string", "description": "The unit it is in, e.g. mi"},
                        "to": {"type": "string", "description": "The unit wanted, e.g. km"},
                        "places": {"type": "integer", "minimum": 0, "maximum": eval::MAX_PLACES}
                    },
                    "required": ["value", "from", "to"],
                    "additionalProperties": false
                }),
            },
        }
    }
}

impl Default for Units {
    fn default() -> Self {
        Self::new()
    }
}

impl Tool for Units {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }
    fn version(&self) -> String {
        crate::builtin_version()
    }
    fn call(&self, a: &Value) -> Result<Value, ToolError> {
        let a: Args = args(a)?;
        if a.places.is_some_and(|p| p > eval::MAX_PLACES) {
            return Err(ToolError::Arguments(format!(
                "at most {} decimal places can be asked for",
                eval::MAX_PLACES
            )));
        }
        let v = calc::exact_value(&a.value.0)
            .map_err(|e| ToolError::Arguments(format!("value: {e}")))?;
        let out = convert(&v, &a.from, &a.to)?;
        let result = match a.places {
            Some(p) => eval::to_places(&out, p),
            None => match eval::terminating_places(&out, 50) {
                Some(p) => eval::to_places(&out, p),
                None => eval::to_places(&out, calc::DEFAULT_PLACES),
            },
        };
        let exact = match a.places {
            Some(p) => eval::terminating_places(&out, p).is_some(),
            None => eval::terminating_places(&out, 50).is_some(),
        };
        Ok(json!({
            "result": result,
            "unit": a.to,
            "exact": exact,
            "fraction": eval::fraction(&out),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn conv(value: Value, from: &str, to: &str) -> Value {
        Units::new()
            .call(&json!({"value": value, "from": from, "to": to}))
            .unwrap()
    }

    #[test]
    fn conversions_are_exact() {
        assert_eq!(conv(json!(1), "mi", "km")["result"], "1.609344");
        assert_eq!(conv(json!("12.5"), "mi", "km")["result"], "20.1168");
        assert_eq!(conv(json!(1), "lb", "g")["result"], "453.59237");
        assert_eq!(conv(json!(100), "C", "F")["result"], "212");
        assert_eq!(conv(json!(-40), "F", "C")["result"], "-40");
        assert_eq!(conv(json!(0), "C", "K")["result"], "273.15");
        assert_eq!(conv(json!(1), "GiB", "MB")["result"], "1073.741824");
        assert_eq!(conv(json!(0.1), "km", "m")["result"], "100");
        let third = conv(json!(1), "ft", "yd");
        assert_eq!(third["exact"], false);
        assert_eq!(third["fraction"], "1/3");
    }

    #[test]
    fn bad_units_are_named() {
        let e = Units::new()
            .call(&json!({"value": 1, "from": "km", "to": "kg"}))
            .unwrap_err();
        assert!(e.to_string().contains("unit of length"), "{e}");
        let e = Units::new()
            .call(&json!({"value": 1, "from": "furlong", "to": "m"}))
            .unwrap_err();
        assert!(e.to_string().contains("unknown unit `furlong`"), "{e}");
        let e = Units::new()
            .call(&json!({"value": 1, "from": "km"}))
            .unwrap_err();
        assert!(matches!(e, ToolError::Arguments(_)), "{e}");
        let e = Units::new()
            .call(&json!({"value": true, "from": "km", "to": "m"}))
            .unwrap_err();
        assert!(matches!(e, ToolError::Arguments(_)), "{e}");
    }
}
