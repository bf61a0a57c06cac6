// @grid/policy-sdk: write grid-gateway policies (WIT grid:policy@0.1.0) in TypeScript.
// The component glue is in ./component.js, the node-only fixture runner in ./testing.js.

export { Address, AddressParseError, sameAddress } from './address.js';
export { Amount, AmountParseError } from './amount.js';
export * as quantity from './quantity.js';
export { QuantityError } from './quantity.js';
export * as settings from './settings.js';
export { SettingsError } from './settings.js';
export * from './types.js';
export * from './policy.js';
export * as fixture from './fixture.js';
