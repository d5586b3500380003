/**
 * Compares two strings in the order of their UTF-8 bytes (= Unicode code point order), which is
 * how S3 and the object API list keys. JavaScript's `<` compares UTF-16 code units, which puts
 * astral characters (surrogate pairs, 0xD800-0xDFFF) before U+E000-U+FFFF; code point order puts
 * them after. Only that case needs fixing, and only at the first differing code unit.
 */
export function compareUtf8(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca >= 0xd800 && cb >= 0xd800) {
      return codeUnitRank(ca) - codeUnitRank(cb);
    }
    return ca - cb;
  }
  return a.length - b.length;
}

/** Surrogates (astral code points) rank above the rest of the BMP's top range. */
function codeUnitRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}
