import { randomBytes } from 'node:crypto';

/**
 * An id for one session, in every log line of it (text and JSON): 12 hex
 * digits from the system's random source, so that sessions of many wrapper
 * processes (inetd starts one per connection) and of one daemon never share
 * one, and a client cannot guess or steer it.
 */
export function newSessionId(): string {
  return randomBytes(6).toString('hex');
}
