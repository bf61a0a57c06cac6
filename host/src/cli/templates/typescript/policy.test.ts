// {{name}}'s native tests (node --test): every fixture, and settings validation.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { fixture, parseSettings, SettingsError } from '@grid/policy-sdk';
import { checkDir } from '@grid/policy-sdk/testing';
import { policy } from '../src/policy.js';

// dist/test -> fixtures
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures');

test('every fixture gives its expected answer', () => {
  const ran = checkDir(FIXTURES, policy, fixture.{{ts_runner}});
  assert.ok(ran >= 3, `only ${ran} fixtures`);
});

test('settings the policy cannot work with are refused', () => {
  assert.throws(() => parseSettings(policy, '{{bad_settings}}'), SettingsError);
  assert.throws(() => parseSettings(policy, '{"no_such_key": 1}'), SettingsError);
  parseSettings(policy, '');
});
