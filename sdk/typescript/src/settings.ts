// Settings validation: a policy declares its settings as a schema; the same parse runs
// natively, in `validate-settings` and when the component reads its settings. Like the
// Rust SDK's serde settings: unknown fields are refused, absent fields take their
// default, amounts and addresses are checked, then the policy's own `validate` runs.

import { Address } from './address.js';
import { Amount } from './amount.js';

const U64_MAX = (1n << 64n) - 1n;

/** Why a settings document is refused; the message is shown to the operator. */
export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

/** How one value of a settings document is read. */
export interface Schema<T> {
  /** Reads a present value; throws a SettingsError naming `path`. */
  read(value: unknown, path: string): T;
  /** The value when the field is absent; none means the field is required. */
  fallback?: () => T;
}

/** The type a schema reads. */
export type Infer<S> = S extends Schema<infer T> ? T : never;

const fail = (path: string, message: string): never => {
  throw new SettingsError(path ? `${path}: ${message}` : message);
};

function withDefault<T>(schema: Schema<T>, fallback: (() => T) | undefined): Schema<T> {
  return fallback === undefined ? schema : { ...schema, fallback };
}

/** A token amount: a decimal string, or a JSON integer for convenience. */
export function amount(fallback?: string | bigint): Schema<Amount> {
  return withDefault(
    {
      read(value, path) {
        if (typeof value === 'number') {
          if (!Number.isSafeInteger(value) || value < 0) fail(path, `${value} is not an amount: write large amounts as decimal strings`);
          return Amount.from(value as number);
        }
        if (typeof value !== 'string') return fail(path, `expected an amount as a decimal string, found ${kind(value)}`);
        try {
          return Amount.parse(value);
        } catch (e) {
          return fail(path, (e as Error).message);
        }
      },
    },
    fallback === undefined ? undefined : () => (typeof fallback === 'bigint' ? Amount.from(fallback) : Amount.parse(fallback)),
  );
}

/** An unsigned 64-bit integer (a JSON integer), as a BigInt. */
export function u64(fallback?: bigint): Schema<bigint> {
  return withDefault(
    {
      read(value, path) {
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
          return fail(path, `expected a non-negative integer, found ${kind(value)}`);
        }
        if (!Number.isSafeInteger(value)) return fail(path, `${value} is too large to be read exactly`);
        const v = BigInt(value);
        return v > U64_MAX ? fail(path, `${value} does not fit in u64`) : v;
      },
    },
    fallback === undefined ? undefined : () => fallback,
  );
}

export function string(fallback?: string): Schema<string> {
  return withDefault(
    {
      read: (value, path) => (typeof value === 'string' ? value : fail(path, `expected a string, found ${kind(value)}`)),
    },
    fallback === undefined ? undefined : () => fallback,
  );
}

export function boolean(fallback?: boolean): Schema<boolean> {
  return withDefault(
    {
      read: (value, path) => (typeof value === 'boolean' ? value : fail(path, `expected true or false, found ${kind(value)}`)),
    },
    fallback === undefined ? undefined : () => fallback,
  );
}

/** An account address, compared by value. */
export function address(): Schema<Address> {
  return {
    read(value, path) {
      if (typeof value !== 'string') return fail(path, `expected an address, found ${kind(value)}`);
      try {
        return Address.parse(value);
      } catch (e) {
        return fail(path, (e as Error).message);
      }
    },
  };
}

/** A JSON array; absent means empty. */
export function list<T>(item: Schema<T>): Schema<T[]> {
  return {
    read(value, path) {
      if (!Array.isArray(value)) return fail(path, `expected an array, found ${kind(value)}`);
      return value.map((v, i) => item.read(v, `${path}[${i}]`));
    },
    fallback: () => [],
  };
}

/** A JSON object of any keys; absent means `fallback` (default: empty). */
export function map<T>(item: Schema<T>, fallback?: () => Map<string, T>): Schema<Map<string, T>> {
  return {
    read(value, path) {
      if (!isObject(value)) return fail(path, `expected an object, found ${kind(value)}`);
      return new Map(Object.entries(value).map(([k, v]) => [k, item.read(v, `${path}.${k}`)]));
    },
    fallback: fallback ?? (() => new Map()),
  };
}

/** A value that may be absent or null (a Rust `Option`). */
export function optional<T>(item: Schema<T>): Schema<T | undefined> {
  return {
    read: (value, path) => (value === null ? undefined : item.read(value, path)),
    fallback: () => undefined,
  };
}

type Fields = Record<string, Schema<unknown>>;
export type ObjectOf<F extends Fields> = { [K in keyof F]: Infer<F[K]> };

/** A JSON object with exactly these fields (unknown ones are refused). */
export function object<F extends Fields>(fields: F): Schema<ObjectOf<F>> {
  const names = Object.keys(fields);
  const schema: Schema<ObjectOf<F>> = {
    read(value, path) {
      if (!isObject(value)) return fail(path, `expected an object, found ${kind(value)}`);
      const unknown = Object.keys(value).find((k) => !Object.hasOwn(fields, k));
      if (unknown !== undefined) {
        fail(path, `unknown field \`${unknown}\`, expected one of ${names.map((n) => `\`${n}\``).join(', ')}`);
      }
      const out: Record<string, unknown> = {};
      for (const name of names) {
        const field = fields[name] as Schema<unknown>;
        const at = path ? `${path}.${name}` : name;
        if (Object.hasOwn(value, name)) out[name] = field.read(value[name], at);
        else if (field.fallback) out[name] = field.fallback();
        else fail(path, `missing field \`${name}\``);
      }
      return out as ObjectOf<F>;
    },
  };
  if (names.every((n) => fields[n]?.fallback !== undefined)) {
    schema.fallback = () => schema.read({}, '');
  }
  return schema;
}

/** Reads a settings document ("" for none: every field's default). */
export function readSettings<T>(schema: Schema<T>, text: string): T {
  if (text.trim() === '') {
    if (schema.fallback) return schema.fallback();
    throw new SettingsError('this policy needs settings, and none were given');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SettingsError(`settings are not valid JSON: ${(e as Error).message}`);
  }
  return schema.read(json, '');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
