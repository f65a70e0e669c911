//! Free text people type and others read (names, labels, reasons): trimmed, bounded, and
//! free of the characters that make text display as something it is not.

/// Bidirectional embedding, override and isolate controls (U+202A..U+202E, U+2066..U+2069):
/// inside a name they reorder what the reader sees ("Trojan Source"), so a merchant name
/// could show a reader a different name, a price or a phone number.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A display text of 1..=`max_chars` characters after trimming, with no control and no
/// bidirectional formatting characters; `None` otherwise.
pub fn display_text(value: &str, max_chars: usize) -> Option<&str> {
    let v = value.trim();
    let ok = !v.is_empty()
        && v.chars().count() <= max_chars
        && !v.chars().any(|c| c.is_control() || is_bidi_control(c));
    ok.then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_script_and_lose_nothing_but_the_edges() {
        assert_eq!(display_text("  验收咖啡 ", 8), Some("验收咖啡"));
        assert_eq!(display_text("Café «Olé» 24/7", 32), Some("Café «Olé» 24/7"));
        // Arabic and Hebrew are fine: their direction comes from the letters themselves.
        assert_eq!(display_text("مقهى", 8), Some("مقهى"));
        assert_eq!(display_text("abc", 3), Some("abc"));
    }

    #[test]
    fn empty_long_control_and_bidi_texts_are_refused() {
        assert_eq!(display_text("   ", 8), None);
        assert_eq!(display_text("abcd", 3), None);
        assert_eq!(display_text("a\u{0007}b", 8), None);
        assert_eq!(display_text("a\nb", 8), None);
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            let name = format!("Shop{c}gnp.exe");
            assert_eq!(display_text(&name, 32), None, "U+{:04X}", c as u32);
        }
        // Neighbours of the ranges are ordinary characters.
        assert!(!is_bidi_control('\u{2029}') && !is_bidi_control('\u{202F}'));
        assert!(!is_bidi_control('\u{2065}') && !is_bidi_control('\u{206A}'));
    }
}
