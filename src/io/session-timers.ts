/**
 * A session's two waits: idle (no bytes either way) and total length.
 * Activity only stamps a time; the idle timer re-arms itself for the
 * remainder when it fires early, so a busy session costs no timer churn.
 */
export class SessionTimers {
  private lastActivity = Date.now();
  private idleTimer: NodeJS.Timeout | null = null;
  private sessionTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly idleMs: number,
    private readonly sessionMs: number,
  ) {}

  touch(): void {
    this.lastActivity = Date.now();
  }

  arm(onIdle: (quietMs: number) => void, onSession: () => void): void {
    const check = () => {
      const quiet = Date.now() - this.lastActivity;
      if (quiet >= this.idleMs) onIdle(quiet);
      else this.idleTimer = setTimeout(check, this.idleMs - quiet);
    };
    this.idleTimer = setTimeout(check, this.idleMs);
    this.sessionTimer = setTimeout(onSession, this.sessionMs);
  }

  clear(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.sessionTimer) clearTimeout(this.sessionTimer);
  }
}
