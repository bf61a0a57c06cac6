// The component's entry: binds the policy to the pricing world's exports.
import * as host from 'grid:policy/host@0.1.0';
import { pricingExports } from '@grid/policy-sdk/component';
import { linearPricing } from './policy.js';

export const { validateSettings, quote } = pricingExports(linearPricing, host);
