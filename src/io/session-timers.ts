import type { ClientPhase, PhaseTimers } from '../core/protocol.js';

/** Which phase deadline ran out (see ClientPhase). */
export type PhaseExpiry = 'head' | 'body' | 'idle';

/**
 * A session's waits: idle (no bytes either way), total length, and the
 * deadline of the phase the protocol says the client is in (HTTP: the whole
 * request head within headerTimeout, a body at minBodyRate at least, a
 * keep-alive connection idle for keepAliveTimeout at most). Activity only
 * stamps a time; one timer serves the idle and the total wait, firing at the
 * earlier of the two and re-arming itself for what is left, so a busy
 * session costs no timer churn (and an idle daemon one Timeout a session,
 * not two). The phase timer is re-armed only when the phase changes.
 */
export class SessionTimers {
  /** performance.now() of the last byte either way. */
  private lastActivity = performance.now();
  private timer: NodeJS.Timeout | null = null;
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
    this.lastActivity = performance.now();
  }

  arm(onIdle: (quietMs: number) => void, onSession: () => void, onPhase?: (p: PhaseExpiry, why: string) => void): void {
    // Elapsed time, as a timer counts it: a step of the wall clock (NTP, a
    // resumed VM) must not end every session at once, nor none for an hour.
    const sessionEnds = performance.now() + this.sessionMs;
    const check = () => {
      const now = performance.now();
      const quiet = now - this.lastActivity;
      if (quiet >= this.idleMs) onIdle(Math.round(quiet));
      else if (now >= sessionEnds) onSession();
      else this.timer = setTimeout(check, Math.min(this.idleMs - quiet, sessionEnds - now));
    };
    this.timer = setTimeout(check, Math.min(this.idleMs, this.sessionMs));
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
    if (this.timer) clearTimeout(this.timer);
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
