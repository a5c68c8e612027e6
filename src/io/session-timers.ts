import type { ClientPhase, PhaseTimers } from '../core/protocol.js';

/** Which phase deadline ran out (see ClientPhase). */
export type PhaseExpiry = 'head' | 'body' | 'idle';

/**
 * A session's waits: idle (no bytes either way), total length, and the
 * deadline of the phase the protocol says the client is in (HTTP: the whole
 * request head within headerTimeout, a body at minBodyRate at least, a
 * keep-alive connection idle for keepAliveTimeout at most). Activity only
 * stamps a time; the idle timer re-arms itself for the remainder when it
 * fires early, so a busy session costs no timer churn. The phase timer is
 * re-armed only when the phase changes.
 */
export class SessionTimers {
  private lastActivity = Date.now();
  private idleTimer: NodeJS.Timeout | null = null;
  private sessionTimer: NodeJS.Timeout | null = null;
  /**
   * The phase deadlines, only for a protocol that has phases (HTTP): every
   * other session does without the object and its closures (10,000 idle
   * sessions are a bench target, bench/README.md).
   */
  private readonly phases: PhaseClock | null;

  constructor(
    private readonly idleMs: number,
    private readonly sessionMs: number,
    phases: PhaseTimers | null = null,
    bytesIn: () => number = () => 0,
  ) {
    this.phases = phases ? new PhaseClock(phases, bytesIn) : null;
  }

  touch(): void {
    this.lastActivity = Date.now();
  }

  arm(onIdle: (quietMs: number) => void, onSession: () => void, onPhase?: (p: PhaseExpiry, why: string) => void): void {
    const check = () => {
      const quiet = Date.now() - this.lastActivity;
      if (quiet >= this.idleMs) onIdle(quiet);
      else this.idleTimer = setTimeout(check, this.idleMs - quiet);
    };
    this.idleTimer = setTimeout(check, this.idleMs);
    this.sessionTimer = setTimeout(onSession, this.sessionMs);
    if (this.phases && onPhase) this.phases.onPhase = onPhase;
  }

  /** The protocol's phase now; a change starts that phase's deadline. */
  phase(p: ClientPhase): void {
    this.phases?.phase(p);
  }

  /** The shell paused the client for flow control: the current body-rate window owes nothing. */
  excuse(): void {
    this.phases?.excuse();
  }

  clear(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.sessionTimer) clearTimeout(this.sessionTimer);
    this.phases?.clear();
  }
}

/** The deadline of the phase a client is in (see ClientPhase), re-armed only when the phase changes. */
class PhaseClock {
  private timer: NodeJS.Timeout | null = null;
  private current: ClientPhase | null = null;
  onPhase: ((p: PhaseExpiry, why: string) => void) | null = null;
  /** bytesIn at the start of the body-rate window. */
  private windowBytes = 0;
  /** The wrapper itself stopped reading the client during this window (the server was slow): no rate is owed for it. */
  private excused = false;
  private cleared = false;

  constructor(
    private readonly t: PhaseTimers,
    private readonly bytesIn: () => number,
  ) {}

  phase(p: ClientPhase): void {
    const t = this.t;
    if (p === this.current || this.cleared) return;
    this.current = p;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    switch (p) {
      case 'head':
        if (t.headMs !== null) this.timer = setTimeout(() => this.onPhase?.('head', `request head not complete within ${t.headMs! / 1000} s`), t.headMs);
        return;
      case 'idle':
        if (t.idleMs !== null) this.timer = setTimeout(() => this.onPhase?.('idle', `keep-alive connection idle for ${t.idleMs! / 1000} s`), t.idleMs);
        return;
      case 'body':
        if (t.minBodyRate !== null) this.startWindow(t.minBodyRate, t.windowMs);
        return;
      case 'busy':
        return;
      default: {
        const never: never = p;
        throw new Error(`unknown phase ${String(never)}`);
      }
    }
  }

  excuse(): void {
    this.excused = true;
  }

  private startWindow(rate: number, windowMs: number): void {
    this.windowBytes = this.bytesIn();
    this.excused = false;
    this.timer = setTimeout(() => {
      const got = this.bytesIn() - this.windowBytes;
      if (!this.excused && got * 1000 < rate * windowMs) {
        this.onPhase?.('body', `body slower than ${rate} bytes/s (${got} bytes in ${windowMs / 1000} s)`);
        return;
      }
      this.startWindow(rate, windowMs);
    }, windowMs);
  }

  clear(): void {
    this.cleared = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
