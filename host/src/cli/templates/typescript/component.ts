// The component's entry: binds the policy to the {{world}} world's exports.
import * as host from 'grid:policy/host@0.1.0';
import { {{ts_exports}} } from '@grid/policy-sdk/component';
import { policy } from './policy.js';

export const { {{ts_export_names}} } = {{ts_exports}}(policy, host);
