//! Rules shared by every one-line text a person types (names, reasons, audiences) or a report
//! brings (leak-report fields).

/// Whether `c` cannot stand in one line of text: a control character (tab, new line, DEL, C1)
/// or a Unicode line or paragraph separator (U+2028, U+2029), which break lines as a new line
/// does in emails, logs, CSV cells and pages.
pub fn breaks_one_line(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Whether `c` shows nothing by itself: white space, zero-width and filler characters, the soft
/// hyphen, variation selectors, tags, combining marks. A name of only such characters looks
/// empty.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            // Zero-width spaces and joiners, word joiner and invisible operators, BOM, soft hyphen,
            // Mongolian vowel separator and variation selectors.
            '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{180B}'..='\u{180F}'
            // Combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Braille blank.
            | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{17B4}' | '\u{17B5}' | '\u{2800}'
            // Variation selectors and tag characters.
            | '\u{FE00}'..='\u{FE0F}' | '\u{E0000}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}'
            // Combining marks alone show nothing of their own.
            | '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
        )
}

/// Whether `c` is a bidirectional control (Unicode TR9: ALM, LRM, RLM, embeddings, overrides,
/// isolates), which can make a name read as another ("Trojan Source", CVE-2021-42574).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_of_every_kind_and_control_characters_break_a_line() {
        for c in ['\n', '\r', '\t', '\u{0}', '\u{7f}', '\u{85}', '\u{2028}', '\u{2029}'] {
            assert!(breaks_one_line(c), "{c:?}");
        }
        for c in ['a', ' ', 'é', '\u{200D}', '🔑'] {
            assert!(!breaks_one_line(c), "{c:?}");
        }
    }
}
