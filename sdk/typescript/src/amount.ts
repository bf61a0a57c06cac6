// Token amounts: a u256 in the token's smallest unit, written as a decimal string wherever
// it crosses a boundary (WIT, JSON, the chain's uint256). Mirrors guest-sdk/src/amount.rs.

const U256_MAX = (1n << 256n) - 1n;
const U64_MAX = (1n << 64n) - 1n;

/** Why a string is not an amount. */
export class AmountParseError extends Error {
  constructor(readonly input: string) {
    super(`${JSON.stringify(input)} is not an amount: expected a decimal integer between 0 and 2^256-1`);
    this.name = 'AmountParseError';
  }
}

/**
 * An amount of the payment token in its smallest unit (like wei for ether), on BigInt.
 *
 * Arithmetic is checked: every operation that could leave 0..2^256-1 returns `undefined`,
 * so a policy cannot silently go negative or beyond what the chain holds.
 */
export class Amount {
  static readonly ZERO = new Amount(0n);
  static readonly MAX = new Amount(U256_MAX);

  private constructor(private readonly value: bigint) {}

  /** Parses a plain decimal integer; signs, spaces, `0x`, exponents and fractions are refused. */
  static parse(text: string): Amount {
    if (typeof text !== 'string' || text.length === 0 || text.length > 78 || !/^[0-9]+$/.test(text)) {
      throw new AmountParseError(String(text));
    }
    const value = BigInt(text);
    if (value > U256_MAX) throw new AmountParseError(text);
    return new Amount(value);
  }

  /** An amount from an integer, or `undefined` when it is negative or above 2^256-1. */
  static of(value: bigint | number): Amount | undefined {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) return undefined;
    const v = BigInt(value);
    return v < 0n || v > U256_MAX ? undefined : new Amount(v);
  }

  /** Like {@link Amount.of} but throws a RangeError for a value out of range. */
  static from(value: bigint | number): Amount {
    const a = Amount.of(value);
    if (a === undefined) throw new RangeError(`${value} is not an amount (0..2^256-1)`);
    return a;
  }

  /** The underlying integer. */
  toBigInt(): bigint {
    return this.value;
  }

  /** The canonical decimal form, as WIT and the fixtures carry it. */
  toString(): string {
    return this.value.toString();
  }

  toJSON(): string {
    return this.toString();
  }

  isZero(): boolean {
    return this.value === 0n;
  }

  /** `self + rhs`, or `undefined` on overflow. */
  checkedAdd(rhs: Amount): Amount | undefined {
    // Each operation tests only the bound it can cross: in a component's interpreter the
    // general Amount.of (type test, BigInt(), two comparisons) costs more than the sum.
    const v = this.value + rhs.value;
    return v > U256_MAX ? undefined : new Amount(v);
  }

  /** `self - rhs`, or `undefined` when `rhs` is larger. */
  checkedSub(rhs: Amount): Amount | undefined {
    const v = this.value - rhs.value;
    return v < 0n ? undefined : new Amount(v);
  }

  /** `self * factor` (a u64 or an amount), or `undefined` on overflow or a bad factor. */
  checkedMul(factor: bigint | Amount): Amount | undefined {
    let f: bigint;
    if (typeof factor === 'bigint') {
      if (factor < 0n || factor > U64_MAX) return undefined;
      f = factor;
    } else if (factor instanceof Amount) {
      f = factor.value;
    } else {
      return undefined;
    }
    const v = this.value * f;
    return v > U256_MAX ? undefined : new Amount(v);
  }

  /** `self / divisor` rounded down, or `undefined` when dividing by zero. */
  checkedDiv(divisor: bigint): Amount | undefined {
    const d = u64(divisor);
    return d === undefined || d === 0n ? undefined : new Amount(this.value / d);
  }

  /**
   * `self * numerator / denominator`, rounded up, with the product taken exactly, so a
   * price scaled by a fraction never overflows in the middle and never rounds in the
   * buyer's favour. `undefined` when the result does not fit or `denominator` is zero.
   */
  mulDivCeil(numerator: bigint, denominator: bigint): Amount | undefined {
    // u64() inlined: this runs for every line of every quote.
    if (typeof numerator !== 'bigint' || numerator < 0n || numerator > U64_MAX) return undefined;
    if (typeof denominator !== 'bigint' || denominator <= 0n || denominator > U64_MAX) return undefined;
    const v = (this.value * numerator + denominator - 1n) / denominator;
    return v > U256_MAX ? undefined : new Amount(v);
  }

  compare(rhs: Amount): -1 | 0 | 1 {
    return this.value < rhs.value ? -1 : this.value > rhs.value ? 1 : 0;
  }

  equals(rhs: Amount): boolean {
    return this.value === rhs.value;
  }

  lt(rhs: Amount): boolean {
    return this.value < rhs.value;
  }
}

/** A u64 factor, or `undefined` outside 0..2^64-1 (the Rust SDK's factors are u64). */
function u64(value: bigint): bigint | undefined {
  return typeof value === 'bigint' && value >= 0n && value <= U64_MAX ? value : undefined;
}
