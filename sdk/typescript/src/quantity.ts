// Kubernetes resource quantities ("500m", "2", "4Gi", "1.5G", "1e9") turned into the
// integers the WIT carries: cpu in millicores, memory and storage in bytes, as BigInt u64.
// Mirrors guest-sdk/src/quantity.rs.

const U64_MAX = (1n << 64n) - 1n;
const U128_MAX = (1n << 128n) - 1n;

/** Why a string is not a quantity, or does not fit the unit asked for. */
export class QuantityError extends Error {
  constructor(readonly input: string, readonly reason: string) {
    super(`${JSON.stringify(input)} is not a valid quantity: ${reason}`);
    this.name = 'QuantityError';
  }
}

/** A cpu quantity in millicores, a finer value rounded up to 1m ("100m" → 100n, "0.5" → 500n). */
export function parseCpuMillis(input: string): bigint {
  return parseScaled(input, 1000n);
}

/** A memory or storage quantity in bytes, a fraction of a byte rounded up ("4Gi" → 4294967296n). */
export function parseBytes(input: string): bigint {
  return parseScaled(input, 1n);
}

/** Millicores as Kubernetes prints them: whole cores without a suffix, else `m`. */
export function formatCpuMillis(millis: bigint): string {
  return millis % 1000n === 0n ? (millis / 1000n).toString() : `${millis}m`;
}

const BINARY: Array<[string, bigint]> = [
  ['Ei', 1n << 60n],
  ['Pi', 1n << 50n],
  ['Ti', 1n << 40n],
  ['Gi', 1n << 30n],
  ['Mi', 1n << 20n],
  ['Ki', 1n << 10n],
];

/** Bytes with the largest binary suffix that divides them exactly ("4Gi", "1536", "3Mi"). */
export function formatBytes(bytes: bigint): string {
  for (const [suffix, unit] of BINARY) {
    if (bytes !== 0n && bytes % unit === 0n) return `${bytes / unit}${suffix}`;
  }
  return bytes.toString();
}

const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

function parseScaled(input: string, factor: bigint): bigint {
  const err = (reason: string) => new QuantityError(input, reason);
  if (typeof input !== 'string') throw err('not a string');
  const s = input.trim();
  if (s.length === 0) throw err('empty');
  if (s.length > 64) throw err('too long');
  // Digits with decimal points; a sign is refused (a negative request of capacity means nothing).
  const numberEnd = s.search(/[^0-9.]/);
  const number = numberEnd === -1 ? s : s.slice(0, numberEnd);
  const suffix = numberEnd === -1 ? '' : s.slice(numberEnd);
  if (number.length === 0 || number === '.') throw err('expected a number first');
  const dot = number.indexOf('.');
  const intPart = dot === -1 ? number : number.slice(0, dot);
  // Trailing zeros of a fraction change nothing.
  const fracPart = dot === -1 ? '' : number.slice(dot + 1).replace(/0+$/, '');
  if (fracPart.includes('.')) throw err('more than one decimal point');
  const digits = intPart + fracPart;
  const mantissa = digits.length === 0 ? 0n : BigInt(digits);
  if (mantissa > U128_MAX) throw err('too large');
  let exp10 = -fracPart.length;
  let binary = 1n;
  if (suffix in DECIMAL) {
    exp10 += DECIMAL[suffix] as number;
  } else {
    const named = BINARY.find(([name]) => name === suffix);
    if (named) {
      binary = named[1];
    } else if (/^[eE]/.test(suffix)) {
      const exponentText = suffix.slice(1);
      if (!/^[+-]?[0-9]+$/.test(exponentText)) throw err('bad exponent');
      const exponent = Number(exponentText);
      if (exponent < -30 || exponent > 30) throw err('exponent out of range');
      exp10 += exponent;
    } else {
      throw err('unknown suffix');
    }
  }
  let value = mantissa * binary * factor;
  if (value > U128_MAX) throw err('too large');
  if (exp10 >= 0) {
    value *= 10n ** BigInt(exp10);
  } else {
    const divisor = 10n ** BigInt(-exp10);
    value = (value + divisor - 1n) / divisor;
  }
  if (value > U64_MAX) throw err('too large');
  return value;
}
