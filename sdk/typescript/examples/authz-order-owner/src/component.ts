// The component's entry: binds the policy to the authorization world's exports.
import * as host from 'grid:policy/host@0.1.0';
import { authorizationExports } from '@grid/policy-sdk/component';
import { orderOwner } from './policy.js';

export const { validateSettings, authorizeSession, authorizeRequest } = authorizationExports(orderOwner, host);
