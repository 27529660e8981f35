// Independent reference for src/sms/: prints what Twilio's npm package
// `sms-segments-calculator` v1.3.0 computes for a fixed list of SMS bodies, so
// the Rust segment counter is checked against someone else's implementation
// rather than against our own reading of GSM 03.38.
//
// Regenerate (the package is NOT a dependency of this repo; install it in a
// throwaway directory and point SMS_REF_DIR at it, or run from inside it):
//
//   tmp=$(mktemp -d) && (cd "$tmp" && npm install sms-segments-calculator@1.3.0)
//   SMS_REF_DIR="$tmp" node scripts/sms-reference.mjs > tests/data/sms-segments.tsv
//
// Output: one row per input, `text_json<TAB>encoding<TAB>segments<TAB>units`,
// where text_json is a JSON string literal (so tabs, newlines and non-ASCII are
// unambiguous), encoding is "GSM-7" or "UCS-2", and units is the package's
// total code units (GSM-7 septets, extension characters counting 2; UTF-16 code
// units for UCS-2).
//
// `--gcb-table` instead prints the grapheme-break property table of the
// package's own dependency grapheme-splitter 1.0.4 (Unicode 10.0.0) as Rust
// constants; src/sms/graphemes.rs embeds that output, because the package never splits a
// grapheme cluster across segments and we must cluster exactly as it does.

import { createRequire } from 'node:module';
import path from 'node:path';

const base = process.env.SMS_REF_DIR ?? process.cwd();
const require = createRequire(path.join(base, 'noop.js'));

let pkg;
try {
  pkg = require('sms-segments-calculator/package.json');
} catch {
  console.error(`sms-segments-calculator not found under ${base}; see the comment at the top of this script`);
  process.exit(1);
}
if (pkg.version !== '1.3.0') {
  throw new Error(`expected sms-segments-calculator 1.3.0, found ${pkg.version}`);
}

if (process.argv.includes('--gcb-table')) {
  printGcbTable();
  process.exit(0);
}

const { SegmentedMessage } = require('sms-segments-calculator');

// A realistic GSM-7 sentence repeated/cut to an exact length, so the boundary
// rows look like real message text rather than runs of one letter.
const FILLER =
  'Riverside Physio reminds you: stretch your hip flexors daily, keep your back straight and book a check-up soon. ';
const gsm = (n) => FILLER.repeat(Math.ceil(n / FILLER.length) + 1).slice(0, n);
// UCS-2 text of exactly n UTF-16 code units: "í" (not in GSM-7) forces UCS-2.
const ucs = (n) => 'í' + gsm(n - 1);

const TEASER =
  'Riverside Physio: Tight psoas? It can cause lower back & hip pain. Book your FREE phone assessment & treatment plan: https://riverside.example/book or call +1 312 555 0100. Reply STOP to opt out';

const cases = [
  // Plain GSM-7 and the single/multipart boundaries (160, 153 per part).
  'Hello World',
  '',
  gsm(1),
  gsm(160),
  gsm(161),
  gsm(306),
  gsm(307),
  gsm(459),
  gsm(460),
  // Extension table characters (escape + char = 2 septets each).
  'Price: €20 [approx] {tax} ~ ^ | \\ done',
  '€'.repeat(80),
  '€'.repeat(81),
  gsm(158) + '€',
  gsm(159) + '€',
  gsm(152) + '€' + gsm(10), // € straddles the 153 boundary: moves whole
  gsm(151) + '€' + gsm(10), // € fills septets 152-153 exactly
  gsm(152) + '€' + gsm(152), // 306 septets = 2 x 153, but € moves: 3
  gsm(152) + '[' + gsm(151) + ']' + gsm(5),
  'Page one\fPage two',
  // GSM-7 basic-set characters that look "special" but are not.
  'José, Zoé, Müller, Ñandu? ¡Si! £5 ¥ § ¤ ¿ Å å Ø ø Æ æ ß É Ç ΔΦΓΛΩΠΨΣΘΞ @ $ _',
  // The whole basic set (127 characters; ESC is not text) in table order,
  // then the whole extension table.
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
    '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
  '\f^{}\\[~]|€',
  'Accents outside GSM-7: í á ó ú ê ç ë',
  'Ça va? ça va.',
  'Backtick ` is not GSM',
  'Tab\there',
  'Greek lower α',
  // Typographic characters from the psoas article that force UCS-2.
  'Tight psoas – lower back pain',
  '• Stretch daily',
  'Call\u00a0today',
  'It’s “free”',
  'Wait…',
  'Tight psoas – lower back pain. • Stretch daily. It’s “free”… Call\u00a0today.',
  // Patient names.
  'Hi María, your appointment is Monday.',
  'Hi José, your appointment is Monday.',
  'Hi Zoë, your appointment is Monday.',
  'Hi François, your appointment is Monday.',
  'Hi Ōtsuka-san, your appointment is Monday.',
  // UCS-2 boundaries (70 single, 67 per part).
  ucs(70),
  ucs(71),
  ucs(134),
  ucs(135),
  ucs(201),
  ucs(202),
  // Surrogate pairs / grapheme clusters at the 67 boundary. Each body is
  // exactly 134 code units, i.e. two full parts if the pieces could be split
  // anywhere, so keeping a piece whole shows up as a third segment.
  ucs(66) + '👍' + gsm(10),
  ucs(66) + '👍' + gsm(66),
  ucs(65) + '👍' + gsm(67), // the pair fits exactly: still 2
  ucs(133) + '👍' + gsm(10),
  ucs(66) + 'e\u0301' + gsm(66), // decomposed é: base + combining mark
  ucs(65) + '🇺🇸' + gsm(65), // flag: two regional indicators
  ucs(65) + '👍🏽' + gsm(65), // skin tone: its parts would fill 67 exactly
  ucs(61) + '👨‍👩‍👧' + gsm(65), // ZWJ family: its parts would fill 67 exactly
  ucs(63) + '🇺🇸🇫🇷' + gsm(63), // two flags: split between them, 2
  ucs(66) + 'कि' + gsm(66), // Devanagari spacing mark
  ucs(66) + '\u1100\u1161\u11a8' + gsm(65), // conjoining Hangul jamo
  ucs(66) + '각\u11a8' + gsm(66), // Hangul syllable + trailing jamo
  ucs(66) + '\r\n' + gsm(66), // CR LF is split like two characters: 2
  '🎉🎉 Happy birthday! 👍🏽 👨‍👩‍👧 🇺🇸 ❤️ 😀😀😀',
  '😀'.repeat(35),
  '😀'.repeat(36),
  '😀'.repeat(100),
  // Realistic outreach texts.
  TEASER,
  TEASER.replace('back & hip', 'back – hip').replace('Tight', 'Tight’'),
  'Riverside Physio: Hi Sam, it’s time for your follow-up. Reply YES to book.',
  // Line breaks: LF, CR and CRLF are all GSM-7 (1 septet each).
  'Line1\nLine2',
  'Line1\rLine2',
  'Line1\r\nLine2',
  '\n',
  'í\r\nó',
  gsm(159) + '\r\n',
  // Other scripts whose clusters span several code points.
  'नमस्ते '.repeat(15),
  '\u1100\u1161\u11a8'.repeat(30),
];

for (const text of cases) {
  const msg = new SegmentedMessage(text);
  const bits = msg.encodingName === 'GSM-7' ? 7 : 16;
  const units = msg.encodedChars.reduce((n, c) => n + c.codeUnits.length, 0);
  // Cross-check the two ways the package exposes size, so `units` is not a
  // misreading of one of them.
  if (units * bits !== msg.messageSize) {
    throw new Error(`unit mismatch for ${JSON.stringify(text)}: ${units} vs ${msg.messageSize} bits`);
  }
  process.stdout.write(`${JSON.stringify(text)}\t${msg.encodingName}\t${msg.segmentsCount}\t${units}\n`);
}

function printGcbTable() {
  // getGraphemeBreakProperty is private to grapheme-splitter, so evaluate its
  // source with a one-line hook that exports it.
  const fs = require('node:fs');
  const file = require.resolve('grapheme-splitter');
  const gsPkg = require('grapheme-splitter/package.json');
  const src = fs
    .readFileSync(file, 'utf8')
    .replace(/\treturn this;/, 'this.gbp = getGraphemeBreakProperty; return this;');
  const mod = { exports: {} };
  new Function('module', 'exports', src)(mod, mod.exports);
  const gbp = new mod.exports().gbp;
  const names = [
    'CR', 'LF', 'CONTROL', 'EXTEND', 'REGIONAL_INDICATOR', 'SPACING_MARK', 'L', 'V', 'T', 'LV',
    'LVT', 'OTHER', 'PREPEND', 'E_BASE', 'E_MODIFIER', 'ZWJ', 'GLUE_AFTER_ZWJ', 'E_BASE_GAZ',
  ];
  const byClass = new Map();
  let cur = null;
  for (let c = 0; c <= 0x10ffff; c++) {
    const p = names[gbp(c)];
    if (cur && cur.p === p && cur.end === c - 1) {
      cur.end = c;
    } else {
      cur = { p, start: c, end: c };
      if (!byClass.has(p)) byClass.set(p, []);
      byClass.get(p).push(cur);
    }
  }
  // Hangul syllables are computed arithmetically in Rust; check that holds.
  for (let c = 0xac00; c <= 0xd7a3; c++) {
    const want = (c - 0xac00) % 28 === 0 ? 'LV' : 'LVT';
    if (names[gbp(c)] !== want) throw new Error(`Hangul rule broken at ${c.toString(16)}`);
  }
  const hex = (n) => '0x' + n.toString(16).toUpperCase().padStart(4, '0');
  console.log(`// Generated by scripts/sms-reference.mjs --gcb-table from grapheme-splitter ${gsPkg.version}.`);
  for (const p of names) {
    if (['OTHER', 'LV', 'LVT', 'CR', 'LF'].includes(p)) continue;
    const flat = byClass.get(p).flatMap((r) => [hex(r.start), hex(r.end)]);
    console.log(`const GCB_${p}: &[u32] = &[${flat.join(', ')}];`);
  }
}
