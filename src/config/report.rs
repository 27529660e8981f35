//! `[report]`: what the HTML report (`outreach report --html`) needs that the ledger cannot say:
//! the price of one SMS segment and its currency, for the report's SMS cost. A price is
//! written as a decimal string (`"0.0079"`), never a float, and kept as millionths of the
//! currency's unit, so that 812 segments at 0.0079 cost exactly 6.4148, not 6.414799999.

use super::error::{ConfigError, Locator};
use super::raw::RawReport;

/// The currency when `report.currency` is not given.
pub const DEFAULT_CURRENCY: &str = "USD";

/// Decimal places a price may have (a millionth of the unit).
const PRICE_DECIMALS: usize = 6;

/// `[report]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSettings {
    /// The price of one SMS segment in millionths of `currency`; none: no cost is shown.
    pub sms_price_per_segment: Option<Price>,
    /// An ISO 4217 code (three capital letters).
    pub currency: String,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            sms_price_per_segment: None,
            currency: DEFAULT_CURRENCY.to_string(),
        }
    }
}

/// An amount in millionths of a currency's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Price(pub u64);

impl Price {
    /// Reads `"0.0079"`: digits, at most one point, at most six decimals.
    pub fn parse(text: &str) -> Result<Price, String> {
        let text = text.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
            return Err(format!(
                "{text:?} is not a price: write a decimal number such as \"0.0079\""
            ));
        }
        if fraction.len() > PRICE_DECIMALS {
            return Err(format!(
                "{text:?} has more than {PRICE_DECIMALS} decimal places"
            ));
        }
        let padded = format!("{fraction:0<PRICE_DECIMALS$}");
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| format!("{text:?} is too large"))?
        };
        let fraction: u64 = padded.parse().expect("six digits");
        whole
            .checked_mul(1_000_000)
            .and_then(|w| w.checked_add(fraction))
            .map(Price)
            .ok_or_else(|| format!("{text:?} is too large"))
    }

    /// This price times `n`, or none past `u64`.
    pub fn times(self, n: u64) -> Option<Price> {
        self.0.checked_mul(n).map(Price)
    }

    /// Written with `decimals` places, rounded half up: `Price(6_414_800).show(2)` is `6.41`.
    pub fn show(self, decimals: u32) -> String {
        let decimals = decimals.min(PRICE_DECIMALS as u32);
        let step = 10u64.pow(PRICE_DECIMALS as u32 - decimals);
        let rounded = (self.0 / step) + u64::from(self.0 % step * 2 >= step);
        let unit = 10u64.pow(decimals);
        match decimals {
            0 => rounded.to_string(),
            d => format!("{}.{:0w$}", rounded / unit, rounded % unit, w = d as usize),
        }
    }
}

/// Checks `[report]`.
pub(super) fn validate_report(
    raw: RawReport,
    loc: &Locator,
) -> Result<ReportSettings, ConfigError> {
    let sms_price_per_segment = match raw.sms_price_per_segment {
        Some(text) => Some(loc.at("report.sms_price_per_segment", Price::parse(&text))?),
        None => None,
    };
    let currency = match raw.currency {
        Some(c) => {
            let c = c.trim().to_string();
            if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(loc.invalid(
                    "report.currency",
                    format!("{c:?} is not a currency code: write three capital letters (\"USD\", \"EUR\")"),
                ));
            }
            c
        }
        None => DEFAULT_CURRENCY.to_string(),
    };
    Ok(ReportSettings {
        sms_price_per_segment,
        currency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_exact_decimals() {
        assert_eq!(Price::parse("0.0079"), Ok(Price(7_900)));
        assert_eq!(Price::parse("1"), Ok(Price(1_000_000)));
        assert_eq!(Price::parse(".5"), Ok(Price(500_000)));
        assert_eq!(Price::parse("12.000001"), Ok(Price(12_000_001)));
        for bad in ["", ".", "-1", "1e3", "0,01", "0.0000001", "abc"] {
            assert!(Price::parse(bad).is_err(), "{bad}");
        }
        let cost = Price::parse("0.0079").unwrap().times(812).unwrap();
        assert_eq!(
            (cost.show(2), cost.show(4)),
            ("6.41".into(), "6.4148".into())
        );
        assert_eq!(Price(5_000).show(2), "0.01");
        assert_eq!(Price(4_999).show(2), "0.00");
        assert_eq!(Price(2_500_000).show(0), "3");
    }
}
