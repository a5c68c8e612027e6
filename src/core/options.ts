/**
 * A declarative option table: key → kind, default and range. The core's own
 * keys and each protocol's keys are written this way, and config.ts checks
 * every source (file and flags) against them once.
 */
export type OptionSpec =
  | { readonly kind: 'integer'; readonly min: number; readonly max: number; readonly default: number | null; readonly doc: string }
  | { readonly kind: 'boolean'; readonly default: boolean; readonly doc: string }
  | { readonly kind: 'string'; readonly default: string | null; readonly oneOf?: readonly string[]; readonly doc: string }
  | { readonly kind: 'stringList'; readonly default: readonly string[]; readonly regex?: boolean; readonly doc: string };

export type OptionTable = Readonly<Record<string, OptionSpec>>;

export type OptionValue = number | boolean | string | readonly string[] | null;

/** The command-line flag of a key: camelCase → kebab-case (maxLoginAttempts → max-login-attempts). */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The default of a spec, as --help and the docs show it. */
export function shownDefault(spec: OptionSpec): string {
  const d = spec.default;
  if (d === null) return 'none';
  if (Array.isArray(d)) return d.length === 0 ? 'none' : d.join(', ');
  return String(d);
}
