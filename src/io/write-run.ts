/**
 * Validated bytes on their way to one side, written in as few writes as the
 * input allows. Forwarded lines that lie next to each other in the same input
 * chunk go out as one write (a write per line costs a system call per line):
 * the run is kept as its first slice and an end offset, and cut out once when
 * flushed. Bytes are never copied or changed; order is kept because anything
 * that does not extend the run flushes it first.
 */
export class WriteRun {
  private run: Buffer | null = null;
  private runEnd = 0;

  constructor(private readonly write: (bytes: Buffer) => void) {}

  add(bytes: Buffer): void {
    const run = this.run;
    if (run && run.buffer === bytes.buffer && this.runEnd === bytes.byteOffset) {
      this.runEnd += bytes.length;
      return;
    }
    this.flush();
    this.run = bytes;
    this.runEnd = bytes.byteOffset + bytes.length;
  }

  flush(): void {
    const run = this.run;
    if (!run) return;
    this.run = null;
    const len = this.runEnd - run.byteOffset;
    this.write(len === run.length ? run : Buffer.from(run.buffer, run.byteOffset, len));
  }
}
