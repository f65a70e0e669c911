#!/usr/bin/env python3
"""Makes the caption font of the printable payment codes (NotoSansSC-Bold-subset.otf).

The subset is Noto Sans CJK SC Bold cut down to what captions need:
  - printable ASCII, Latin-1 letters and the punctuation of Chinese text;
  - GB 2312 (6,763 characters): level 1, the 3,755 most frequently used, and level 2, which
    holds many characters common in shop names (鑫, 琪, 圳) that level 1 lacks;
  - the characters the sheets print themselves (instruction, labels).
The full font is ~20 MB; the subset is ~1.4 MB. A character outside it is drawn as the
font's .notdef box (tofu), visibly, never as another character.

Source: Debian's fonts-noto-cjk (/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc),
licensed under the SIL Open Font License 1.1 (OFL.txt beside this file).

    apt-get install fonts-noto-cjk && pip install 'fonttools>=4.38'
    python3 assets/fonts/make-subset.py
"""

import pathlib
import sys

from fontTools import subset
from fontTools.ttLib import TTCollection

SOURCE = pathlib.Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")
FAMILY = "Noto Sans CJK SC"
OUT = pathlib.Path(__file__).with_name("NotoSansSC-Bold-subset.otf")

# What the server prints itself (src/http/qr.rs): instruction, amount, currency.
SHEET_TEXT = "微信扫码付款使用支付收款码金额元人民币固定任意请向商家确认"
PUNCTUATION = "，。、；：？！“”‘’（）《》【】—…·￥¥～－"


def gb2312_hanzi() -> str:
    """Rows 16-87 of GB 2312 (0xB0A1-0xF7FE): level 1 by pinyin, then level 2 by radical."""
    chars = []
    for row in range(0xB0, 0xF8):
        for cell in range(0xA1, 0xFF):
            try:
                chars.append(bytes([row, cell]).decode("gb2312"))
            except UnicodeDecodeError:
                pass  # the five empty cells at the end of row 55
    return "".join(chars)


def main() -> int:
    collection = TTCollection(str(SOURCE))
    fonts = [f for f in collection.fonts if f["name"].getDebugName(1) == FAMILY]
    if not fonts:
        print(f"{FAMILY} not in {SOURCE}", file=sys.stderr)
        return 1
    font = fonts[0]
    hanzi = gb2312_hanzi()
    assert len(hanzi) == 6763, len(hanzi)
    latin = "".join(chr(c) for c in range(0x20, 0x7F)) + "".join(
        chr(c) for c in range(0xA0, 0x100)
    )
    text = latin + PUNCTUATION + SHEET_TEXT + hanzi
    options = subset.Options()
    options.layout_features = ["kern", "palt", "vert"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True  # the tofu box for characters outside the subset
    options.hinting = False
    options.desubroutinize = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    font.save(str(OUT))
    print(f"{OUT.name}: {len(set(text))} characters, {OUT.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
