/**
 * Splits a command string into argv with shell-like quoting ('single',
 * "double" with \" \\ \$ \` escapes, backslash outside quotes), without ever
 * running a shell: no globbing, no variables, no redirections. Returns an
 * error message instead of throwing so config.ts can name the key.
 */
export function splitCommand(cmd: string): string[] | string {
  const argv: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  while (i < cmd.length) {
    const c = cmd[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) argv.push(cur);
      cur = '';
      inWord = false;
      i++;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const close = cmd.indexOf("'", i + 1);
      if (close < 0) return 'unterminated single quote';
      cur += cmd.slice(i + 1, close);
      i = close + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= cmd.length) return 'unterminated double quote';
        const d = cmd[i]!;
        if (d === '"') break;
        if (d === '\\' && i + 1 < cmd.length && '"\\$`'.includes(cmd[i + 1]!)) {
          cur += cmd[i + 1];
          i += 2;
          continue;
        }
        cur += d;
        i++;
      }
      i++;
    } else if (c === '\\') {
      if (i + 1 >= cmd.length) return 'trailing backslash';
      cur += cmd[i + 1];
      i += 2;
    } else {
      cur += c;
      i++;
    }
  }
  if (inWord) argv.push(cur);
  if (argv.length === 0) return 'empty command';
  return argv;
}
