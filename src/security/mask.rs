//! Personal data in text: the `Phone` type (a mainland mobile number), masks for phone,
//! id card and bank card numbers, and a log writer that masks every line it writes.

use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;

/// A mainland China mobile number, normalized to 11 digits (`1[3-9]xxxxxxxxx`).
#[derive(Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// Accepts spaces, dashes and a `+86`/`86` prefix; rejects everything else.
    pub fn parse(raw: &str) -> Result<Phone, String> {
        let compact: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        let digits = compact
            .strip_prefix("+86")
            .or_else(|| compact.strip_prefix("0086"))
            .or_else(|| {
                (compact.len() == 13)
                    .then(|| compact.strip_prefix("86"))
                    .flatten()
            })
            .unwrap_or(&compact);
        let bytes = digits.as_bytes();
        let ok = bytes.len() == 11
            && bytes.iter().all(u8::is_ascii_digit)
            && bytes.first() == Some(&b'1')
            && bytes.get(1).is_some_and(|b| (b'3'..=b'9').contains(b));
        if ok {
            Ok(Phone(digits.to_string()))
        } else {
            Err("phone must be a mainland China mobile number (11 digits starting 13-19)".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `138****5678`.
    pub fn masked(&self) -> String {
        mask_middle(&self.0, 3, 4)
    }
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

/// Keeps `head` leading and `tail` trailing characters, stars in between (at least 4).
pub fn mask_middle(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len().max(4));
    }
    let stars = chars.len() - head - tail;
    let mut out: String = chars.iter().take(head).collect();
    out.push_str(&"*".repeat(stars.max(4)));
    out.extend(chars.iter().skip(chars.len() - tail));
    out
}

/// Masks phone numbers (11 digits starting with 1, optionally `86`-prefixed), id card numbers
/// (15 digits, or 17 digits and a digit or X; the first 6 and last 4 kept) and bank card numbers (16-19 digits) found as
/// standalone digit runs in `text`. Runs glued to letters or other digits (hex ids) are left.
pub fn mask_pii(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        let prev_alnum = i > 0 && bytes.get(i - 1).is_some_and(u8::is_ascii_alphanumeric);
        if !b.is_ascii_digit() || prev_alnum {
            i += 1;
            continue;
        }
        let start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let mut end = i;
        let digits = end - start;
        if digits == 17 && bytes.get(end).is_some_and(|c| *c == b'X' || *c == b'x') {
            end += 1;
        }
        if bytes.get(end).is_some_and(u8::is_ascii_alphanumeric) {
            i = end;
            continue;
        }
        let run = &text[start..end];
        let masked = match end - start {
            11 if run.starts_with('1') => Some(mask_middle(run, 3, 4)),
            13 if run.starts_with("861") => Some(format!("86{}", mask_middle(&run[2..], 3, 4))),
            // An id card keeps its region code (6) and last 4, as the source design masks it.
            15 | 18 => Some(mask_middle(run, 6, 4)),
            16 | 17 | 19 => Some(mask_middle(run, 4, 4)),
            _ => None,
        };
        if let Some(m) = masked {
            out.push_str(&text[last..start]);
            out.push_str(&m);
            last = end;
        }
        i = end;
    }
    out.push_str(&text[last..]);
    out
}

/// A `MakeWriter` that masks personal numbers in every formatted log line before writing.
#[derive(Clone)]
pub struct MaskingMakeWriter<M> {
    inner: M,
}

impl<M> MaskingMakeWriter<M> {
    pub fn new(inner: M) -> Self {
        MaskingMakeWriter { inner }
    }
}

pub struct MaskingWriter<W> {
    inner: W,
}

impl<W: Write> Write for MaskingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The fmt layer writes one whole event per call, so numbers are never split.
        match std::str::from_utf8(buf) {
            Ok(text) => self.inner.write_all(mask_pii(text).as_bytes())?,
            Err(_) => self.inner.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for MaskingMakeWriter<M> {
    type Writer = MaskingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        MaskingWriter {
            inner: self.inner.make_writer(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_parse_and_mask() {
        for ok in [
            "13812345678",
            "+86 138-1234-5678",
            "8613812345678",
            "0086 13812345678",
        ] {
            assert_eq!(Phone::parse(ok).unwrap().as_str(), "13812345678", "{ok}");
        }
        for bad in [
            "",
            "1381234567",
            "138123456789",
            "12812345678",
            "23812345678",
            "1381234567a",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Phone::parse("13812345678").unwrap().masked(), "138****5678");
        assert!(!format!("{:?}", Phone::parse("13812345678").unwrap()).contains("1234"));
    }

    #[test]
    fn pii_is_masked_in_text_and_ids_are_left() {
        let text = "phone=13812345678 id 11010519491231002X card:6222021234567890123 \
                    intl +8613912345678 trace 0195a2b3c4d5e6f71381234567890abc amount=1500";
        let m = mask_pii(text);
        assert!(m.contains("phone=138****5678"), "{m}");
        assert!(m.contains(" 110105********002X "), "{m}");
        assert!(
            mask_pii("old id 110105491231002").contains("110105*****1002"),
            "15-digit id"
        );
        assert!(m.contains("6222***********0123"), "{m}");
        assert!(m.contains("+86139****5678"), "{m}");
        assert!(m.contains("0195a2b3c4d5e6f71381234567890abc"), "{m}");
        assert!(m.contains("amount=1500"), "{m}");
    }

    #[test]
    fn the_log_writer_masks_events() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(MaskingMakeWriter::new(move || sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(phone = "13812345678", "user 13912345678 changed");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            !text.contains("13812345678") && !text.contains("13912345678"),
            "{text}"
        );
        assert!(text.contains("138****5678"), "{text}");
    }
}
