//! Untrusted names made safe to show: client names from registrations and
//! Client ID Metadata Documents, organization and API key names.
//!
//! Unicode format characters (general category Cf: bidi embeddings,
//! overrides and isolates U+202A–U+202E and U+2066–U+2069, the Arabic letter
//! mark U+061C, zero-width characters U+200B–U+200F) and control characters
//! (Cc) can reverse the text around a name or make `Cl\u{200b}aude` look like
//! `Claude`. They are removed where a name enters the system; pages also
//! render names inside `<bdi>` so that what remains cannot reorder the
//! sentence around it (Unicode Bidirectional Algorithm, UAX #9 §2.7).

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// `raw` without control and format characters, line and paragraph
/// separators, with runs of whitespace collapsed to one space and trimmed,
/// and cut to `max_chars` characters. `None` when nothing visible is left.
pub fn clean(raw: &str, max_chars: usize) -> Option<String> {
    let mut out = String::with_capacity(raw.len().min(max_chars * 4));
    let mut pending_space = false;
    let mut count = 0;
    for c in raw.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
                | GeneralCategory::Surrogate
                | GeneralCategory::PrivateUse
                | GeneralCategory::Unassigned
        ) {
            continue;
        }
        let needed = if pending_space { 2 } else { 1 };
        if count + needed > max_chars {
            break;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
        count += needed;
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_bidi_controls_and_zero_width_characters() {
        for (raw, clean_form) in [
            ("Evil App\u{202e}", "Evil App"),
            ("Cl\u{200b}aude", "Claude"),
            ("\u{2066}Acme\u{2069} \u{2067}x\u{2068}", "Acme x"),
            ("a\u{200c}b\u{200d}c\u{200e}d\u{200f}e\u{061c}f", "abcdef"),
            ("line\r\nbreak\u{0}\u{7}", "line break"),
            ("  spaced \t out  ", "spaced out"),
            ("para\u{2029}graph\u{2028}", "para graph"),
            ("Ünïcödé 名前 🎉", "Ünïcödé 名前 🎉"),
        ] {
            assert_eq!(clean(raw, 200).as_deref(), Some(clean_form), "{raw:?}");
        }
        assert_eq!(clean("\u{202e}\u{200b} \u{0}", 200), None);
    }

    #[test]
    fn cuts_at_a_character_boundary() {
        assert_eq!(clean("ééééé", 3).as_deref(), Some("ééé"));
        assert_eq!(clean("ab cd", 3).as_deref(), Some("ab"));
    }
}
