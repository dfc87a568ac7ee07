/**
 * Typed decode failure for wire messages (TWAMP-Control and TWAMP-Test).
 *
 * Decoders in this directory throw only this class, so a caller can tell a
 * malformed peer message (log, count, answer Accept = 3 or close) from a
 * programming error (RangeError/TypeError from an encoder).
 */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  /** Protocol name of the message, e.g. `Request-TW-Session`. */
  readonly messageName: string;
  /** Field that failed, in the RFC's words (e.g. `IPVN`). */
  readonly field?: string;
  /** Octet offset of that field inside the message. */
  readonly offset?: number;

  constructor(messageName: string, detail: string, opts: { field?: string; offset?: number } = {}) {
    const where: string[] = [];
    if (opts.field !== undefined) where.push(`field ${opts.field}`);
    if (opts.offset !== undefined) where.push(`at offset ${opts.offset}`);
    super(`${messageName}: ${where.length > 0 ? `${where.join(' ')}: ` : ''}${detail}`);
    this.messageName = messageName;
    if (opts.field !== undefined) this.field = opts.field;
    if (opts.offset !== undefined) this.offset = opts.offset;
  }
}
