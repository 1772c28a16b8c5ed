//! Text in figures. DejaVu Sans is compiled in and registered with plotters once, so labels render the same on
//! every machine, with or without system fonts.

use super::canvas::{drawing_error, Area};
use crate::error::{Error, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;
use std::sync::OnceLock;

const DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name figures ask plotters for (its charts default to it too).
pub const FAMILY: &str = "sans-serif";

/// Text sizes in pixels of line height (ascent + descent).
pub const TITLE: f64 = 22.0;
pub const LABEL: f64 = 17.0;
pub const SMALL: f64 = 14.0;

/// DejaVu Sans' ascent as a share of its line height (1901 of 1901 + 483 font units).
const ASCENT: f64 = 0.797;

/// Registers the embedded font with plotters (once per process).
pub fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::msg(
            "the embedded figure font (DejaVu Sans) could not be loaded",
        ))
    }
}

fn font(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), size, FontStyle::Normal)
}

/// Width in pixels of `text` set at `size`.
pub fn width(text: &str, size: f64) -> Result<u32> {
    ensure_font()?;
    let (w, _) = font(size)
        .box_size(text)
        .map_err(|e| Error::msg(format!("figure text `{text}`: {e:?}")))?;
    Ok(w)
}

/// The widest of `texts` at `size` (0 for none).
pub fn max_width<S: AsRef<str>>(texts: &[S], size: f64) -> Result<u32> {
    texts
        .iter()
        .try_fold(0, |m, t| Ok(m.max(width(t.as_ref(), size)?)))
}

/// Draws `text` so that its visible line box (ascent to descent, `size` high) sits at `(x, y)` as `h` and `v`
/// say. plotters' ab_glyph layout puts the baseline half a size below the anchor and reports a shorter box than
/// the glyphs take, so the vertical placement is done here.
pub fn draw(
    area: &Area,
    text: &str,
    size: f64,
    (x, y): (i32, i32),
    (h, v): (HPos, VPos),
    colour: RGBColor,
) -> Result<()> {
    ensure_font()?;
    let top = match v {
        VPos::Top => y as f64,
        VPos::Center => y as f64 - size / 2.0,
        VPos::Bottom => y as f64 - size,
    };
    let style = TextStyle::from(font(size))
        .color(&colour)
        .pos(Pos::new(h, VPos::Top));
    let anchor_y = (top + (ASCENT - 0.5) * size).round() as i32;
    area.draw_text(text, &style, (x, anchor_y))
        .map_err(drawing_error)
}

/// Draws `text` reading bottom to top, its line box centred on `(x, y)` (axis titles of a vertical axis).
pub fn draw_vertical(
    area: &Area,
    text: &str,
    size: f64,
    (x, y): (i32, i32),
    colour: RGBColor,
) -> Result<()> {
    ensure_font()?;
    let style = TextStyle::from(font(size).transform(FontTransform::Rotate270))
        .color(&colour)
        .pos(Pos::new(HPos::Center, VPos::Top));
    // Rotated, the glyphs' line box spans x + [0.5 − ascent, 1.5 − ascent]·size from the anchor.
    let anchor_x = (x as f64 - (1.0 - ASCENT) * size).round() as i32;
    area.draw_text(text, &style, (anchor_x, y))
        .map_err(drawing_error)
}

/// A number for a label: three significant digits, plain notation in [0.01, 10⁴), scientific outside.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(0.01..10_000.0).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// [`number`] without trailing zeros after the point ("10", "0.5", "1.2e4"): labels of a log axis.
pub fn short_number(v: f64) -> String {
    let text = number(v);
    let (mantissa, exponent) = match text.split_once('e') {
        Some((m, e)) => (m.to_string(), format!("e{e}")),
        None => (text, String::new()),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        mantissa
    };
    mantissa + &exponent
}

/// Decimals that tell apart the ~5 tick labels of a linear axis over `lo..hi` (0 to 6).
pub fn axis_decimals(lo: f64, hi: f64) -> usize {
    let step = (hi - lo).abs() / 5.0;
    if step > 0.0 && step.is_finite() {
        (-step.log10()).ceil().clamp(0.0, 6.0) as usize
    } else {
        2
    }
}

/// `v` with `decimals` digits after the point, without a sign on a value that rounds to zero.
pub fn fixed(v: f64, decimals: usize) -> String {
    let text = format!("{v:.decimals$}");
    match text.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => text,
    }
}

/// Labels for an evenly spaced sweep of values: one number of decimals for all, enough (at least 2, at most
/// 6) that neighbouring values read apart.
pub fn sweep(values: &[f64]) -> Vec<String> {
    let spacing = values
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    let decimals = if spacing.is_finite() {
        (-spacing.log10()).ceil().clamp(2.0, 6.0) as usize
    } else {
        2
    };
    values.iter().map(|&v| fixed(v, decimals)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_keep_their_sign() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-1.234), "-1.23");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(1234.5), "1234");
        assert_eq!(number(0.000123), "1.23e-4");
        assert_eq!(number(f64::NAN), "NaN");
    }

    #[test]
    fn sweeps_share_enough_decimals_to_tell_neighbours_apart() {
        assert_eq!(
            sweep(&[-3.0, -1.0, 1.0, 3.0]),
            ["-3.00", "-1.00", "1.00", "3.00"]
        );
        assert_eq!(
            sweep(&[-0.03, -0.025, -0.02]),
            ["-0.030", "-0.025", "-0.020"]
        );
        assert_eq!(sweep(&[0.5, 0.5]), ["0.50", "0.50"]);
        assert_eq!(fixed(-0.0004, 2), "0.00");
        assert_eq!(fixed(-0.004, 2), "0.00");
        assert_eq!(fixed(-0.006, 2), "-0.01");
    }

    #[test]
    fn axis_labels_have_the_decimals_their_spacing_needs() {
        assert_eq!(axis_decimals(0.0, 50.0), 0);
        assert_eq!(axis_decimals(99.29, 99.33), 3);
        assert_eq!(axis_decimals(-0.1, 0.1), 2);
        assert_eq!(short_number(10.0), "10");
        assert_eq!(short_number(0.5), "0.5");
        assert_eq!(short_number(12_000.0), "1.2e4");
    }

    #[test]
    fn wider_text_measures_wider() {
        let short = width("z0", LABEL).unwrap();
        let long = width("do(light_angle = 0.25)", LABEL).unwrap();
        assert!(short > 5 && long > 4 * short, "{short} {long}");
        assert!(width("z0", TITLE).unwrap() > short);
    }
}
