// Ethereum addresses: 20 bytes, parsed from `0x`-prefixed hex in any letter case.
// Mirrors guest-sdk/src/address.rs.

/** Why a string is not an address. */
export class AddressParseError extends Error {
  constructor(readonly input: string) {
    super(`${JSON.stringify(input)} is not an address: expected 0x followed by 40 hex digits`);
    this.name = 'AddressParseError';
  }
}

/**
 * A 20-byte account address. Equality compares the bytes, so `0xAbC…` and `0xabc…` are
 * the same address: checksum casing (EIP-55) is presentation, not identity. Printed as
 * lowercase `0x` hex.
 */
export class Address {
  static readonly ZERO = new Address('0x' + '0'.repeat(40));

  private constructor(private readonly lower: string) {}

  static parse(text: string): Address {
    if (typeof text !== 'string' || !/^0[xX][0-9a-fA-F]{40}$/.test(text)) {
      throw new AddressParseError(String(text));
    }
    return new Address('0x' + text.slice(2).toLowerCase());
  }

  /** The address, or `undefined` when the text is not one. */
  static tryParse(text: string): Address | undefined {
    try {
      return Address.parse(text);
    } catch {
      return undefined;
    }
  }

  equals(other: Address | string): boolean {
    const o = typeof other === 'string' ? Address.tryParse(other) : other;
    return o !== undefined && o.lower === this.lower;
  }

  toString(): string {
    return this.lower;
  }

  toJSON(): string {
    return this.lower;
  }
}

/**
 * True when two WIT address strings name the same account (compared by value, not as
 * text); false when either is not an address.
 */
export function sameAddress(a: string, b: string): boolean {
  const x = Address.tryParse(a);
  return x !== undefined && x.equals(b);
}
