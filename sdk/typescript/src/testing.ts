// Running a directory of fixtures natively (node only: it reads files), for a policy's
// `node --test`. Mirrors check_dir / load_dir of guest-sdk/src/fixture.rs.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { type Fixture, FixtureError, mismatch, type Outcome, parseFixture } from './fixture.js';
import { parseSettings, type PolicyDefinition } from './policy.js';

/** The settings file beside a policy's fixtures; it is not a fixture. */
export const SETTINGS_FILE = 'settings.json';

/** The settings text ("" when there is none) and every fixture in `dir`, sorted by name. */
export function loadDir(dir: string): { settings: string; fixtures: Array<[string, Fixture]> } {
  let settings = '';
  try {
    settings = readFileSync(join(dir, SETTINGS_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const names = readdirSync(dir)
    .filter((n) => n.endsWith('.json') && n !== SETTINGS_FILE)
    .sort();
  const fixtures = names.map((name): [string, Fixture] => {
    try {
      return [name, parseFixture(readFileSync(join(dir, name), 'utf8'))];
    } catch (e) {
      throw new FixtureError(`${join(dir, name)}: ${(e as Error).message}`);
    }
  });
  return { settings, fixtures };
}

/**
 * Runs every fixture in `dir` against the policy its settings file configures, with `run`
 * (e.g. runPricing), and checks each answer against `expect`. Returns how many ran; the
 * error names the failing fixture.
 */
export function checkDir<S, P>(
  dir: string,
  definition: PolicyDefinition<S, P>,
  run: (fixture: Fixture, policy: P) => Outcome,
): number {
  const { settings, fixtures } = loadDir(dir);
  const policy = parseSettings(definition, settings);
  for (const [name, fixture] of fixtures) {
    const problem = mismatch(fixture, run(fixture, policy));
    if (problem !== undefined) throw new FixtureError(`${name}: ${problem}`);
  }
  return fixtures.length;
}
